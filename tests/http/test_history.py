"""The history endpoints over real HTTP: consent and preference history by ProfileId and by
AlternateId, and consent filters; JSON and XML under both roots, the writes made on a frozen clock."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from helpers import NAMESPACE, XSI, auth, find, minimal_profile, post_json, send, xml_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mypreferences_sandbox.testing.control_client import ControlClient

START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
PREFIXES = ["", "/Profiles"]
HOLDER = "alternateIdType=CRM&alternateId=h-1"
CREATED = {
    "CustomerName": {"FirstName": "Ann", "LastName": "Example"},
    "CustomerType": "Retail",
    "DefaultLocale": "fr_CA",
    "AlternateIds": [{"AlternateIdType": "CRM", "AlternateId": "h-1"}],
    "ProfilePreferences": [{"FilterId": "news", "PreferenceType": 1}],
    "Emails": [
        {
            "EmailAddress": "a@x.com",
            "EmailPreferences": [
                {
                    "FilterId": "promo",
                    "PreferenceType": 2,
                    "PreferenceAttributes": [{"Key": "k", "Value": "v"}],
                }
            ],
        }
    ],
}
EMAIL = {"EmailAddress": "a@x.com"}


class Clock:
    """The sandbox clock, frozen for a test; each request is signed at the time the sandbox has."""

    def __init__(self, control: ControlClient) -> None:
        self.control = control
        self.now = START

    def advance(self, seconds: int) -> str:
        """Move the clock on; the new time, as the sandbox writes it."""
        self.control.advance_clock(seconds)
        self.now += timedelta(seconds=seconds)
        return self.stamp()

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def send(self, method: str, url: str, body: object = None) -> requests.Response:
        """A write that must succeed."""
        response = send(method, url, body, **auth(self.now))
        assert response.status_code in (200, 201), response.text
        return response

    def get(self, url: str) -> requests.Response:
        return send("GET", url, **auth(self.now))


@pytest.fixture
def clock(control: ControlClient) -> Iterator[Clock]:
    control.set_clock(START)
    try:
        yield Clock(control)
    finally:
        control.release_clock()


def preference(filter_id: str, kind: int, moment: str, contact: dict | None = None, **fields: object) -> dict:
    """A history entry as the sandbox records one: a preference of ``tester``, as set at ``moment``."""
    return {
        "ProgramId": None, "ChannelId": "Email" if contact else None, "Consents": [], "MatchType": "Expressed",
        "ReasonCode": None, "ExpirationDate": None, "PreferenceStatus": "Active", "LastModifiedDate": moment,
        "UserId": "tester", "SourceId": None, "FilterId": filter_id, "PreferenceType": kind, "FrequencyId": None,
        "PreferenceAttributes": [], "ContactElement": contact, **fields,
    }  # fmt: skip


def consent(kind: str, version: str, status: int, moment: str) -> dict:
    """A consent as the consent history answers it: posted by ``tester`` at ``moment``."""
    edited = {"CreateDate": moment, "CreatedBy": "tester", "ModifiedDate": moment, "ModifiedBy": "tester"}
    return {
        "ConsentType": kind, "Locale": "en_US", "ConsentStatus": status, "ConsentVersion": version,
        "Expired": False, "ExpirationDate": None, "ConsentDate": moment, "Edited": edited, "Status": "Complete",
    }  # fmt: skip


def posted(kind: str, version: str, status: int) -> dict:
    return {"ConsentType": kind, "ConsentVersion": version, "Locale": "en_US", "ConsentStatus": status}


def local_names(element: ET.Element) -> list[str]:
    return [child.tag.replace(f"{{{NAMESPACE}}}", "") for child in element]


def get(url: str, **headers: str) -> requests.Response:
    return send("GET", url, **headers)


# --- preference history -----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_preference_history_lists_every_change_in_order(base_url, client_id, clock, prefix):
    root = f"{base_url}{prefix}/{client_id}/Profile"
    t0 = clock.stamp()
    profile_id = clock.send("POST", root, CREATED).json()["ProfileId"]
    by_id = f"{root}/{profile_id}"
    t1 = clock.advance(60)
    clock.send("PUT", by_id, CREATED | {"ProfilePreferences": [{"FilterId": "news", "PreferenceType": 2}]})
    t2 = clock.advance(60)
    opted_in = [{"FilterId": "promo", "PreferenceType": 1}]
    clock.send("POST", by_id, {"Emails": [EMAIL | {"EmailPreferences": opted_in}]})
    t3 = clock.advance(60)
    clock.send(
        "PATCH", by_id, [{"op": "replace", "path": "/ProfilePreferences/0/PreferenceType", "value": 1}]
    )
    t4 = clock.advance(60)
    clock.send(
        "PUT", by_id, CREATED | {"ProfilePreferences": [], "Emails": [EMAIL | {"EmailPreferences": opted_in}]}
    )

    history = clock.get(f"{by_id}/PreferenceHistory")
    held = clock.get(f"{root}/PreferenceHistory?{HOLDER}")

    assert history.status_code == 200, history.text
    assert history.json() == [
        preference("news", 1, t0),
        preference("promo", 2, t0, EMAIL, PreferenceAttributes=[{"Key": "k", "Value": "v"}]),
        preference("news", 2, t1),
        preference("promo", 1, t2, EMAIL),
        preference("news", 1, t3),
        preference("news", 1, t4, PreferenceStatus="Archived"),
    ]
    assert (held.status_code, held.json()) == (200, history.json())


@pytest.mark.parametrize("prefix", PREFIXES)
def test_preference_history_of_one_filter(base_url, client_id, clock, prefix):
    root = f"{base_url}{prefix}/{client_id}/Profile"
    t0 = clock.stamp()
    profile_id = clock.send("POST", root, CREATED).json()["ProfileId"]
    t1 = clock.advance(30)
    clock.send(
        "POST", f"{root}/{profile_id}", {"ProfilePreferences": [{"FilterId": "NEWS", "PreferenceType": 2}]}
    )

    news = clock.get(f"{root}/{profile_id}/PreferenceHistory?filterId=news").json()
    held = clock.get(f"{root}/PreferenceHistory?{HOLDER}&filterId=News").json()
    none = clock.get(f"{root}/{profile_id}/PreferenceHistory?filterId=other")
    every = clock.get(f"{root}/{profile_id}/PreferenceHistory?filterId=").json()

    assert news == held == [preference("news", 1, t0), preference("NEWS", 2, t1)]
    assert (none.status_code, none.json()) == (200, [])
    assert [entry["FilterId"] for entry in every] == ["news", "promo", "NEWS"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_preference_history_in_xml(base_url, client_id, prefix):
    root = f"{base_url}{prefix}/{client_id}/Profile"
    profile_id = post_json(root, CREATED).json()["ProfileId"]

    for url in (f"{root}/{profile_id}/PreferenceHistory", f"{root}/PreferenceHistory?{HOLDER}"):
        response = get(url, Accept="application/xml")
        document = xml_of(response)

        assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert document.tag == f"{{{NAMESPACE}}}ArrayOfHistoricalPreference"
        assert local_names(document) == ["HistoricalPreference", "HistoricalPreference"]
        own, email = document
        assert local_names(own)[-2:] == ["UserId", "ContactElement"]
        assert find(own, "ContactElement").get(f"{{{XSI}}}nil") == "true"
        assert [find(own, "FilterId").text, find(own, "PreferenceType").text] == ["news", "OptIn"]
        assert [find(email, "FilterId").text, find(email, "PreferenceType").text] == ["promo", "OptOut"]
        assert find(email, "ChannelId").text == "Email"
        assert find(email, "ContactElement/EmailAddress").text == "a@x.com"
        assert find(email, "PreferenceAttributes/PreferenceAttribute/Key").text == "k"


# --- consent history --------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_consent_history_is_the_basic_profile_and_every_consent_in_order(base_url, client_id, clock, prefix):
    root = f"{base_url}{prefix}/{client_id}"
    t0 = clock.stamp()
    profile_id = clock.send("POST", f"{root}/Profile", CREATED).json()["ProfileId"]
    consents = f"{root}/Consents/{profile_id}"
    t1 = clock.advance(60)
    clock.send("POST", consents, {"Consents": [posted("sms", "1", 1), posted("email", "2", 1)]})
    t2 = clock.advance(60)
    clock.send("POST", consents, {"Consents": [posted("email", "1", 2), posted("Email", "2", 3)]})
    t3 = clock.advance(60)
    clock.send("POST", consents, {"Consents": [posted("email", "1", 3)]})

    history = clock.get(f"{root}/Profile/{profile_id}/ConsentHistory")
    held = clock.get(f"{root}/Profile/ConsentHistory?{HOLDER}")

    assert history.status_code == 200, history.text
    assert history.json() == {
        "Consents": [
            consent("email", "1", 2, t2),
            consent("email", "1", 3, t3),
            consent("email", "2", 1, t1),
            consent("Email", "2", 3, t2),
            consent("sms", "1", 1, t1),
        ],
        "ProfileId": profile_id,
        "IsActive": True,
        "Edited": {"CreateDate": t0, "CreatedBy": "tester", "ModifiedDate": t3, "ModifiedBy": "tester"},
        "RegistrationConfirmed": False,
        "CustomerType": "Retail",
        "PreservePreferences": True,
        "CustomerName": {
            "FirstName": "Ann",
            "MiddleName": None,
            "LastName": "Example",
            "Prefix": None,
            "Suffix": None,
        },
        "DefaultLocale": "fr_CA",
    }
    assert (held.status_code, held.json()) == (200, history.json())


def test_consents_posted_together_keep_their_order(base_url, client_id, profile_url):
    profile_id = post_json(profile_url, minimal_profile()).json()["ProfileId"]
    alike = [posted("email", "1", status) for status in (4, 1, 3, 2)]
    send("POST", f"{base_url}/{client_id}/Consents/{profile_id}", {"Consents": alike})

    history = get(f"{profile_url}/{profile_id}/ConsentHistory").json()

    assert [entry["ConsentStatus"] for entry in history["Consents"]] == [4, 1, 3, 2]


def test_consent_history_orders_by_modified_date_not_by_arrival(base_url, client_id, control):
    late, early = "2024-05-01T00:00:00.000Z", "2023-05-01T00:00:00.000Z"
    imported = [
        posted("email", "1", status) | {"Edited": {"CreateDate": moment, "ModifiedDate": moment}}
        for status, moment in ((1, late), (2, early))
    ]
    control.import_state({"clients": {client_id: [{"Consents": imported}]}})
    [profile] = control.export_state(client_id)["clients"][client_id]

    history = get(f"{base_url}/{client_id}/Profile/{profile['ProfileId']}/ConsentHistory").json()

    assert [(c["ConsentStatus"], c["Edited"]["ModifiedDate"]) for c in history["Consents"]] == [
        (2, early),
        (1, late),
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_consent_history_in_xml(base_url, client_id, prefix):
    root = f"{base_url}{prefix}/{client_id}"
    profile_id = post_json(f"{root}/Profile", CREATED).json()["ProfileId"]
    send("POST", f"{root}/Consents/{profile_id}", {"Consents": [posted("b", "1", 2), posted("a", "1", 1)]})

    for url in (f"{root}/Profile/{profile_id}/ConsentHistory", f"{root}/Profile/ConsentHistory?{HOLDER}"):
        document = xml_of(get(url, Accept="application/xml"))

        assert document.tag == f"{{{NAMESPACE}}}ConsentHistory"
        assert local_names(document) == [
            "Consents", "CustomerName", "CustomerType", "DefaultLocale", "Edited", "IsActive",
            "PreservePreferences", "ProfileId", "RegistrationConfirmed",
        ]  # fmt: skip
        entries = find(document, "Consents")
        assert local_names(entries) == ["HistoricalConsent", "HistoricalConsent"]
        assert local_names(entries[0]) == [
            "ConsentStatus", "ConsentType", "ConsentVersion", "Locale", "Expired", "ExpirationDate",
            "ConsentDate", "Edited", "Status",
        ]  # fmt: skip
        assert [(find(e, "ConsentType").text, find(e, "ConsentStatus").text) for e in entries] == [
            ("a", "Granted"),
            ("b", "Denied"),
        ]
        assert {find(e, "Status").text for e in entries} == {"Complete"}
        assert find(document, "ProfileId").text == str(profile_id)


# --- consent filters --------------------------------------------------------------------------

FILTERED = {
    "CustomerType": "Retail",
    "ProfilePreferences": [{"FilterId": "news", "PreferenceType": 1}, {"FilterId": "alpha", "PreferenceType": 2}],
    "Emails": [
        {
            "EmailAddress": "a@x.com",
            "EmailAddressType": "Personal",
            "EmailPreferences": [{"FilterId": "News", "PreferenceType": 2}, {"FilterId": "promo", "PreferenceType": 1}],
        },
        {"EmailAddress": "b@x.com", "EmailAddressType": "personal", "EmailPreferences": [{"FilterId": "news", "PreferenceType": 1}]},
    ],
    "PhoneNumbers": [{"PhoneNumber": "555-0100", "PhoneType": "Mobile", "PhonePreferences": [{"FilterId": "promo", "PreferenceType": 1}]}],
    "Addresses": [
        {"Address1": "1 Main St", "City": "Springfield", "StateProvince": "IL", "PostalCode": "62701",
         "AddressType": "Home", "AddressPreferences": [{"FilterId": "news", "PreferenceType": 1}]},
        {"Address1": "2 Side St", "City": "Springfield", "StateProvince": "IL", "PostalCode": "62701",
         "AddressPreferences": [{"FilterId": "news", "PreferenceType": 2}]},
    ],
}  # fmt: skip


def association(filter_id: str, type_name: str | None) -> dict:
    return {"FilterId": filter_id, "TypeName": type_name, "Implied": False, "Consents": []}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_consent_filters_are_the_profiles_filters_by_type(base_url, client_id, prefix):
    root = f"{base_url}{prefix}/{client_id}"
    profile_id = post_json(f"{root}/Profile", FILTERED).json()["ProfileId"]
    url = f"{root}/Consents/{profile_id}/Filters"

    every = get(url)
    news = get(f"{url}?filterId=NEWS")

    assert every.status_code == 200, every.text
    assert every.json() == [
        association("alpha", "Retail"),
        association("news", None),
        association("news", "Home"),
        association("News", "Personal"),
        association("news", "Retail"),
        association("promo", "Mobile"),
        association("promo", "Personal"),
    ]
    assert news.json() == every.json()[1:5]
    assert get(f"{url}?filterId=other").json() == []
    assert get(f"{url}?implied=TRUE").json() == get(f"{url}?implied=false").json() == every.json()


def test_consent_filters_of_a_profile_without_preferences(base_url, client_id, profile_url):
    profile_id = post_json(profile_url, minimal_profile()).json()["ProfileId"]

    response = get(f"{base_url}/{client_id}/Consents/{profile_id}/Filters")

    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("prefix", PREFIXES)
def test_consent_filters_in_xml(base_url, client_id, prefix):
    root = f"{base_url}{prefix}/{client_id}"
    profile_id = post_json(f"{root}/Profile", FILTERED).json()["ProfileId"]

    document = xml_of(get(f"{root}/Consents/{profile_id}/Filters?filterId=promo", Accept="application/xml"))

    assert document.tag == f"{{{NAMESPACE}}}ArrayOfConsentFilter"
    assert local_names(document) == ["ConsentFilter", "ConsentFilter"]
    assert local_names(document[0]) == ["Consents", "FilterId", "Implied", "TypeName"]
    assert [(find(e, "TypeName").text, find(e, "Implied").text) for e in document] == [
        ("Mobile", "false"),
        ("Personal", "false"),
    ]
    assert list(find(document[0], "Consents")) == []


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("value", ["yes", "1", ""])
def test_consent_filters_refuse_a_bad_implied_flag(base_url, client_id, profile_url, prefix, value):
    profile_id = post_json(profile_url, FILTERED).json()["ProfileId"]

    response = get(f"{base_url}{prefix}/{client_id}/Consents/{profile_id}/Filters?implied={value}")

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == ["implied"]


# --- what is not there ------------------------------------------------------------------------

BY_ID = ["/Profile/{id}/ConsentHistory", "/Profile/{id}/PreferenceHistory", "/Consents/{id}/Filters"]
BY_HOLDER = ["/Profile/ConsentHistory", "/Profile/PreferenceHistory"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("path", BY_ID)
def test_an_unknown_profile_is_404(base_url, client_id, prefix, path):
    response = get(f"{base_url}{prefix}/{client_id}{path.format(id=99999999)}")
    in_xml = get(f"{base_url}{prefix}/{client_id}{path.format(id=99999999)}", Accept="application/xml")

    assert response.status_code == in_xml.status_code == 404
    assert "Message" in response.json()
    assert in_xml.headers["Content-Type"].startswith("application/xml")


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("path", BY_HOLDER)
def test_an_alternate_id_no_active_profile_holds_is_404(base_url, client_id, profile_url, prefix, path):
    profile_id = post_json(profile_url, CREATED).json()["ProfileId"]
    url = f"{base_url}{prefix}/{client_id}"
    send("POST", f"{profile_url}/{profile_id}/Deactivate")

    unknown = get(f"{url}{path}?alternateIdType=CRM&alternateId=nobody")
    deactivated = get(f"{url}{path}?{HOLDER}")
    by_id = get(f"{url}{path.replace('/Profile/', f'/Profile/{profile_id}/')}")

    assert (unknown.status_code, deactivated.status_code, by_id.status_code) == (404, 404, 200)


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("path", BY_HOLDER)
@pytest.mark.parametrize(
    ("query", "missing"),
    [
        ("", "alternateIdType"),
        ("?alternateIdType=CRM", "alternateId"),
        ("?alternateId=h-1", "alternateIdType"),
    ],
)
def test_both_alternate_id_parameters_are_required(
    base_url, client_id, profile_url, prefix, path, query, missing
):
    post_json(profile_url, CREATED)

    response = get(f"{base_url}{prefix}/{client_id}{path}{query}")

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == [missing]


def test_a_deleted_profile_has_no_history(base_url, client_id, profile_url):
    profile_id = post_json(profile_url, CREATED).json()["ProfileId"]
    send("DELETE", f"{profile_url}/{profile_id}")

    assert [get(f"{base_url}/{client_id}{path.format(id=profile_id)}").status_code for path in BY_ID] == [
        404
    ] * 3


def test_the_journal_names_the_profile_each_answer_is_of(base_url, client_id, profile_url, control):
    profile_id = post_json(profile_url, CREATED).json()["ProfileId"]
    urls = [f"{base_url}/{client_id}{path.format(id=profile_id)}" for path in BY_ID]
    urls += [f"{base_url}/{client_id}{path}?{HOLDER}" for path in BY_HOLDER]

    statuses = [get(url).status_code for url in urls]

    assert statuses == [200] * 5
    assert [entry.get("profileId") for entry in control.requests(client_id=client_id, method="GET")] == [
        profile_id
    ] * 5


# --- a property: the history is complete and ordered --------------------------------------------

PREFERENCE_SETS = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from([1, 2]), max_size=3)
CONSENT_BATCHES = st.lists(
    st.tuples(
        st.sampled_from(["email", "Email", "sms"]), st.sampled_from(["1", "2", "10"]), st.integers(1, 4)
    ),
    min_size=1,
    max_size=3,
)
WRITES = st.lists(
    st.one_of(
        st.tuples(st.just("consents"), CONSENT_BATCHES),
        st.tuples(st.sampled_from(["PUT", "POST", "PATCH"]), PREFERENCE_SETS),
    ),
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=WRITES)
def test_history_is_complete_and_ordered(base_url, client_id, clock, writes):
    profile_url = f"{base_url}/{client_id}/Profile"
    profile_id = clock.send("POST", profile_url, minimal_profile()).json()["ProfileId"]
    consents: list[tuple[str, str, int, str]] = []
    changes: list[tuple[str, str, int, str]] = []
    current: dict[str, int] = {}
    for write, what in writes:
        moment = clock.advance(60)
        if write == "consents":
            sent = {"Consents": [posted(*entry) for entry in what]}
            clock.send("POST", f"{base_url}/{client_id}/Consents/{profile_id}", sent)
            consents += [(*entry, moment) for entry in what]
            continue
        wanted = [{"FilterId": name, "PreferenceType": kind} for name, kind in what.items()]
        body = {
            "PUT": minimal_profile(ProfilePreferences=wanted),
            "POST": {"ProfilePreferences": wanted},
            "PATCH": [{"op": "add", "path": "/ProfilePreferences", "value": wanted}],
        }[write]
        clock.send(write, f"{profile_url}/{profile_id}", body)
        changes += [
            (moment, name, kind, "Active") for name, kind in what.items() if current.get(name) != kind
        ]
        changes += [(moment, name, kind, "Archived") for name, kind in current.items() if name not in what]
        current = dict(what)

    consent_history = clock.get(f"{profile_url}/{profile_id}/ConsentHistory").json()["Consents"]
    preference_history = clock.get(f"{profile_url}/{profile_id}/PreferenceHistory").json()

    # Consents: every one posted, ascending by type, version (case ignored) and time; posted alike, as posted.
    expected = sorted(consents, key=lambda c: (c[0].casefold(), c[1].casefold(), c[3]))
    assert [
        (c["ConsentType"], c["ConsentVersion"], c["ConsentStatus"], c["Edited"]["ModifiedDate"])
        for c in consent_history
    ] == expected
    # Preferences: every state reached, each change once, oldest first.
    found = [
        (p["LastModifiedDate"], p["FilterId"], p["PreferenceType"], p["PreferenceStatus"])
        for p in preference_history
    ]
    assert [moment for moment, *_ in found] == sorted(moment for moment, *_ in found)
    assert sorted(found) == sorted(changes)
