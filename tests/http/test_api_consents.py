"""Consents over real HTTP: adding them (JSON numbers, XML names), their rules, and the status list."""

from __future__ import annotations

import re

import pytest
from helpers import NAMESPACE, find, minimal_profile, post_json, send, send_xml, xml_of

CONSENT = {"ConsentType": "marketing", "ConsentVersion": "v1", "Locale": "en_US", "ConsentStatus": 1}


@pytest.fixture
def consents_url(base_url, client_id, profile_url) -> str:
    profile_id = post_json(profile_url, minimal_profile()).json()["ProfileId"]
    return f"{base_url}/{client_id}/Consents/{profile_id}"


def test_consents_are_added_with_their_own_edited(consents_url, profile_url):
    response = send("POST", consents_url, {"Consents": [CONSENT, CONSENT | {"ConsentStatus": "Revoked"}]})

    profile = response.json()
    assert response.status_code == 200, response.text
    first, second = profile["Consents"]
    assert {key: first[key] for key in CONSENT} == CONSENT
    assert second["ConsentStatus"] == 3
    assert (first["Expired"], first["ExpirationDate"]) == (False, None)
    assert first["ConsentDate"] == first["Edited"]["CreateDate"] == profile["Edited"]["ModifiedDate"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ConsentDate"])
    assert send("GET", f"{profile_url}/{profile['ProfileId']}").json()["Consents"] == profile["Consents"]


def test_consent_date_is_kept_in_utc(consents_url):
    response = send(
        "POST", consents_url, {"Consents": [CONSENT | {"ConsentDate": "2026-01-02T03:04:05-05:00"}]}
    )

    assert response.json()["Consents"][0]["ConsentDate"] == "2026-01-02T08:04:05.000Z"


# Without a zone, Eastern time with its daylight saving (an inference from the vendor's default).
EASTERN_DATES = [
    ("2026-01-02T03:04:05", "2026-01-02T08:04:05.000Z"),  # EST, UTC-5
    ("2026-07-02T03:04:05", "2026-07-02T07:04:05.000Z"),  # EDT, UTC-4
    ("2026-03-08T03:30:00", "2026-03-08T07:30:00.000Z"),  # the first hour of daylight saving
    ("2026-07-02", "2026-07-02T04:00:00.000Z"),  # a date alone: midnight
    ("2026-11-01T01:30:00", "2026-11-01T06:30:00.000Z"),  # the repeated hour: standard time, as .NET
    ("2026-03-08T02:30:00", "2026-03-08T06:30:00.000Z"),  # the skipped hour: on daylight time
]


@pytest.mark.parametrize(("sent", "kept"), EASTERN_DATES)
def test_a_consent_date_without_a_zone_is_eastern_time_in_json(consents_url, sent, kept):
    response = send("POST", consents_url, {"Consents": [CONSENT | {"ConsentDate": sent}]})

    assert response.json()["Consents"][0]["ConsentDate"] == kept


@pytest.mark.parametrize(("sent", "kept"), EASTERN_DATES)
def test_a_consent_date_without_a_zone_is_eastern_time_in_xml(consents_url, sent, kept):
    inner = (
        f"<Consents><CreateCustomerConsent><ConsentDate>{sent}</ConsentDate><ConsentStatus>Granted"
        "</ConsentStatus><ConsentType>email</ConsentType><ConsentVersion>2</ConsentVersion>"
        "<Locale>en_US</Locale></CreateCustomerConsent></Consents>"
    )

    response = send_xml("POST", consents_url, "CreateCustomerConsentList", inner, Accept="application/xml")

    assert response.status_code == 200, response.text
    assert find(xml_of(response), "Consents/CustomerConsent/ConsentDate").text == kept


def test_consents_in_xml_use_status_names(consents_url):
    inner = (
        "<Consents><CreateCustomerConsent><ConsentStatus>Denied</ConsentStatus><ConsentType>email</ConsentType>"
        "<ConsentVersion>2</ConsentVersion><Locale>fr_CA</Locale></CreateCustomerConsent></Consents>"
    )

    response = send_xml("POST", consents_url, "CreateCustomerConsentList", inner)

    consent = find(xml_of(response), "Consents/CustomerConsent")
    assert response.status_code == 200, response.text
    assert [child.tag.replace(f"{{{NAMESPACE}}}", "") for child in consent] == [
        "ConsentStatus", "ConsentType", "ConsentVersion", "Locale", "Expired", "ExpirationDate", "ConsentDate", "Edited",
    ]  # fmt: skip
    assert find(consent, "ConsentStatus").text == "Denied"


@pytest.mark.parametrize(
    ("consent", "path", "message"),
    [
        (CONSENT | {"ConsentType": "t" * 101}, "Consents[0].ConsentType",
         "The field ConsentType must be a string with a minimum length of 1 and a maximum length of 100."),
        (CONSENT | {"ConsentVersion": "v" * 51}, "Consents[0].ConsentVersion",
         "The field ConsentVersion must be a string with a minimum length of 1 and a maximum length of 50."),
        (CONSENT | {"Locale": "l" * 16}, "Consents[0].Locale",
         "The field Locale must be a string with a minimum length of 1 and a maximum length of 15."),
        ({key: value for key, value in CONSENT.items() if key != "Locale"}, "Consents[0].Locale", "The Locale field is required."),
        ({key: value for key, value in CONSENT.items() if key != "ConsentStatus"}, "Consents[0].ConsentStatus",
         "The ConsentStatus field is required."),
        (CONSENT | {"ConsentStatus": 5}, "Consents[0].ConsentStatus",
         "Error converting value 5 to type 'ConsentStatus'; use one of 1 (Granted), 2 (Denied), 3 (Revoked), 4 (NotSet)."),
        (CONSENT | {"ConsentStatus": True}, "Consents[0].ConsentStatus",
         "Error converting value true to type 'ConsentStatus'; use one of 1 (Granted), 2 (Denied), 3 (Revoked), 4 (NotSet)."),
        (CONSENT | {"ConsentDate": "yesterday"}, "Consents[0].ConsentDate",
         "The value 'yesterday' is not a valid ISO 8601 date and time."),
        (CONSENT | {"ConsentDate": "0001-01-01T00:00:00+01:00"}, "Consents[0].ConsentDate",
         "The value '0001-01-01T00:00:00+01:00' is not a valid ISO 8601 date and time."),
        (CONSENT | {"ConsentDate": "9999-12-31T23:00:00-05:00"}, "Consents[0].ConsentDate",
         "The value '9999-12-31T23:00:00-05:00' is not a valid ISO 8601 date and time."),
        (CONSENT | {"ConsentStatus": "\u00b2"}, "Consents[0].ConsentStatus", None),
        (CONSENT | {"ConsentStatus": "1" * 5000}, "Consents[0].ConsentStatus", None),
        (CONSENT | {"ConsentStatus": [1]}, "Consents[0].ConsentStatus", None),
        (CONSENT | {"ConsentStatus": {}}, "Consents[0].ConsentStatus", None),
    ],
    ids=["type", "version", "locale", "no-locale", "no-status", "status-5", "status-bool", "date",
         "date-before-year-1", "date-after-9999", "status-superscript", "status-huge", "status-list", "status-object"],
)  # fmt: skip
def test_consent_rules(consents_url, served, client_id, consent, path, message):
    response = send("POST", consents_url, {"Consents": [consent]})

    assert response.status_code == 400
    if message:
        assert response.json()["ModelState"] == {path: [message]}
    else:
        assert list(response.json()["ModelState"]) == [path]
    assert served.profiles(client_id)[0]["Consents"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [({"Consents": []}, "At least one consent is required."), ({}, "The Consents field is required.")],
)
def test_at_least_one_consent(consents_url, body, message):
    response = send("POST", consents_url, body)

    assert response.json()["ModelState"] == {"Consents": [message]}


def test_consents_for_an_unknown_profile_are_404(base_url, client_id):
    assert (
        send("POST", f"{base_url}/{client_id}/Consents/99999999", {"Consents": [CONSENT]}).status_code == 404
    )


def test_without_history_only_the_latest_consent_of_each_type_and_locale(consents_url, profile_url):
    profile_id = consents_url.rsplit("/", 1)[1]
    send("POST", consents_url, {"Consents": [CONSENT, CONSENT | {"Locale": "fr_CA"}]})
    send("POST", consents_url, {"Consents": [CONSENT | {"ConsentStatus": 2}]})

    history = send("GET", f"{profile_url}/{profile_id}").json()["Consents"]
    latest = send("GET", f"{profile_url}/{profile_id}?includeConsentHistory=false").json()["Consents"]

    assert [(c["Locale"], c["ConsentStatus"]) for c in history] == [("en_US", 1), ("fr_CA", 1), ("en_US", 2)]
    assert [(c["Locale"], c["ConsentStatus"]) for c in latest] == [("en_US", 2), ("fr_CA", 1)]


def test_consent_status_list(base_url, client_id):
    json_list = send("GET", f"{base_url}/{client_id}/ConsentStatus")
    xml_list = xml_of(send("GET", f"{base_url}/Profiles/{client_id}/ConsentStatus", Accept="application/xml"))

    assert json_list.json() == {"ConsentStatus": [
        {"Id": 1, "Name": "Granted"}, {"Id": 2, "Name": "Denied"}, {"Id": 3, "Name": "Revoked"}, {"Id": 4, "Name": "NotSet"},
    ]}  # fmt: skip
    # As the vendor's sample nests it: ConsentStatusList / ConsentStatus / ConsentStatus.
    [wrapper] = list(xml_list)
    assert xml_list.tag == f"{{{NAMESPACE}}}ConsentStatusList"
    assert wrapper.tag == f"{{{NAMESPACE}}}ConsentStatus"
    assert [find(entry, "Name").text for entry in wrapper] == ["Granted", "Denied", "Revoked", "NotSet"]
    assert [find(entry, "Id").text for entry in wrapper] == ["1", "2", "3", "4"]
    assert {entry.tag for entry in wrapper} == {f"{{{NAMESPACE}}}ConsentStatus"}
