"""Searches over real HTTP: by email, phone, partial name and custom fields; active profiles only."""

from __future__ import annotations

import pytest
from helpers import Served, find, minimal_profile, post_json, send, xml_of


def profile(first: str, last: str, email: str, phone: str, tier: str) -> dict:
    return minimal_profile(
        CustomerName={"FirstName": first, "LastName": last},
        Emails=[{"EmailAddress": email}],
        PhoneNumbers=[{"PhoneNumber": phone}],
        CustomFields=[{"Name": "tier", "Value": tier}, {"Name": "region", "Value": "south"}],
    )


@pytest.fixture
def people(profile_url) -> dict[str, int]:
    bodies = {
        "ann": profile("Ann", "Example", "ann@example.com", "(404) 555-0100", "gold"),
        "annie": profile("Annie", "Examples", "shared@example.com", "404.555.0199", "silver"),
        "bob": profile("Bob", "Sample", "SHARED@example.com", "+1 404 555 0100", "gold"),
    }
    return {name: post_json(profile_url, body).json()["ProfileId"] for name, body in bodies.items()}


def found(profile_url: str, query: str) -> list[int]:
    response = send("GET", f"{profile_url}?{query}")
    assert response.status_code == 200, response.text
    return [p["ProfileId"] for p in response.json()]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("emailAddress=shared@EXAMPLE.com", ["annie", "bob"]),
        ("emailAddress=nobody@example.com", []),
        ("phoneNumber=404-555-0100", ["ann"]),
        ("phoneNumber=14045550100", ["bob"]),
        ("lastName=exam", ["ann", "annie"]),
        ("lastName=exam&firstName=NNIE", ["annie"]),
        ("lastName=Sample&middleName=x", []),
        ("customFields[0].Name=TIER&customFields[0].Value=Gold", ["ann", "bob"]),
        (
            "customFields[0].Name=tier&customFields[0].Value=gold&customFields[1].Name=region&customFields[1].Value=north",
            [],
        ),
        ("customFields[0].Name=region", ["ann", "annie", "bob"]),
    ],
)
def test_searches(profile_url, people, query, expected):
    assert found(profile_url, query) == [people[name] for name in expected]


def test_search_in_xml_is_an_array_of_user_profiles(profile_url, people):
    response = send("GET", f"{profile_url}?emailAddress=shared@example.com", Accept="text/xml")

    document = xml_of(response)
    assert (
        document.tag
        == "{http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models}ArrayOfUserProfile"
    )
    assert [find(entry, "ProfileId").text for entry in document] == [str(people["annie"]), str(people["bob"])]


def test_searches_skip_deactivated_profiles(profile_url, people):
    send("POST", f"{profile_url}/{people['bob']}/Deactivate")

    assert found(profile_url, "emailAddress=shared@example.com") == [people["annie"]]
    assert found(profile_url, "customFields[0].Name=tier&customFields[0].Value=gold") == [people["ann"]]


def test_more_matches_than_the_documented_50_is_403(profile_url):
    for _ in range(50):
        post_json(profile_url, minimal_profile(Emails=[{"EmailAddress": "many@example.com"}]))
    fifty = send("GET", f"{profile_url}?emailAddress=many@example.com")
    post_json(profile_url, minimal_profile(Emails=[{"EmailAddress": "many@example.com"}]))

    over = send("GET", f"{profile_url}?emailAddress=many@example.com")

    assert (fifty.status_code, len(fifty.json())) == (200, 50)
    assert over.status_code == 403
    assert over.json() == {"Message": "The search matches more than 50 profiles; narrow it."}


def test_search_limit_is_configurable():
    with Served({"MAX_SEARCH_RESULTS": 2}) as served:
        url = f"{served.url}/acme/Profile"
        for _ in range(2):
            post_json(url, minimal_profile())
        two = send("GET", f"{url}?lastName=Example")
        post_json(url, minimal_profile())
        three = send("GET", f"{url}?lastName=Example")

    assert (two.status_code, three.status_code) == (200, 403)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("", "query"),
        ("firstName=Ann", "query"),
        ("lastName=", "lastName"),
        ("phoneNumber=abc", "phoneNumber"),
    ],
)
def test_a_search_needs_its_parameters(profile_url, query, key):
    response = send("GET", f"{profile_url}?{query}")

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == [key]


@pytest.mark.parametrize("flag", ["implied", "includeConsentHistory"])
def test_retrieve_flags_must_be_booleans(profile_url, people, flag):
    good = send("GET", f"{profile_url}/{people['ann']}?{flag}=False")
    bad = send("GET", f"{profile_url}/{people['ann']}?{flag}=maybe")

    assert good.status_code == 200
    assert bad.status_code == 400
    assert bad.json()["ModelState"] == {
        flag: [f"The value 'maybe' is not valid for {flag}; use true or false."]
    }


def test_a_phone_search_narrows_by_type_and_may_take_inactive_profiles_too(profile_url):
    def create(number: str, kind: str) -> int:
        body = minimal_profile(PhoneNumbers=[{"PhoneNumber": number, "PhoneType": kind}])
        return post_json(profile_url, body).json()["ProfileId"]

    mobile, home = create("404-555-0111", "Mobile"), create("(404) 555 0111", "Home")
    send("POST", f"{profile_url}/{home}/Deactivate")

    assert found(profile_url, "phoneNumber=4045550111") == [mobile]
    assert found(profile_url, "phoneNumber=4045550111&includeInactive=true") == [mobile, home]
    assert found(profile_url, "phoneNumber=4045550111&includeInactive=true&phoneType=HOME") == [home]
    assert found(profile_url, "phoneNumber=4045550111&phoneType=home") == []
    assert send("GET", f"{profile_url}?phoneNumber=4045550111&includeInactive=yes").status_code == 400


def address(line: str, city: str = "Roswell", state: str = "GA", kind: str = "Home") -> dict:
    return {
        "Address1": line,
        "City": city,
        "StateProvince": state,
        "PostalCode": "30075",
        "AddressType": kind,
    }


@pytest.fixture
def households(profile_url) -> dict[str, int]:
    bodies = {
        "audrey": minimal_profile(
            CustomerName={"FirstName": "Audrey", "MiddleName": "Julia", "LastName": "Michaels"},
            Addresses=[address("12 Jefferson Drive")],
            Emails=[{"EmailAddress": "audrey@example.com", "EmailAddressType": "Personal"}],
            Groups=[{"GroupType": "Household", "GroupName": "Michaels", "IsPrimary": True}],
        ),
        "ben": minimal_profile(
            CustomerName={"FirstName": "Ben", "LastName": "Michaels"},
            Addresses=[address("12 Jefferson Drive")],
            Groups=[{"GroupType": "household", "GroupName": "michaels"}],
        ),
        "cara": minimal_profile(
            CustomerName={"FirstName": "Cara", "LastName": "Jefferson"},
            Addresses=[address("9 Jefferson Drive", kind="Business")],
            Groups=[{"GroupType": "Household", "GroupName": "Other"}],
        ),
    }
    return {name: post_json(profile_url, body).json()["ProfileId"] for name, body in bodies.items()}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("city=roswell&stateProvince=ga", ["audrey", "ben", "cara"]),
        ("city=Roswell&stateProvince=GA&address1=12 jefferson drive", ["audrey", "ben"]),
        ("city=Roswell&stateProvince=GA&address1=Jefferson Drive", []),
        ("city=Roswell&stateProvince=GA&address1=Jefferson Drive&partialAddress1Match=true", ["audrey", "ben", "cara"]),
        ("city=Roswell&stateProvince=GA&addressType=business", ["cara"]),
        ("city=Roswell&stateProvince=GA&lastName=Michaels&firstName=Audrey&middleName=Julia", ["audrey"]),
        ("city=Roswell&stateProvince=GA&lastName=Mich", []),
        ("city=Roswell&stateProvince=GA&lastName=Mich&partialNameMatch=true", ["audrey", "ben"]),
        ("city=Atlanta&stateProvince=GA", []),
    ],
)  # fmt: skip
def test_profiles_by_address(profile_url, households, query, expected):
    assert found(f"{profile_url}/Address", query) == [households[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "missing"), [("city=Roswell", ["stateProvince"]), ("", ["city", "stateProvince"])]
)
def test_profiles_by_address_need_city_and_state(profile_url, query, missing):
    response = send("GET", f"{profile_url}/Address?{query}")

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == missing


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("Group", "emailAddress=AUDREY@example.com&groupType=household", ["audrey", "ben"]),
        ("Group", "emailAddress=audrey@example.com&emailType=personal&groupType=Household&groupName=MICHAELS", ["audrey", "ben"]),
        ("Group", "emailAddress=audrey@example.com&emailType=Work&groupType=Household", []),
        ("Group", "emailAddress=audrey@example.com&groupType=Household&groupName=Other", []),
        ("Group", "emailAddress=audrey@example.com&groupType=Club", []),
        ("Group/{audrey}", "groupType=Household", ["audrey", "ben"]),
        ("Group/{ben}", "groupType=Household", []),
    ],
)  # fmt: skip
def test_group_profiles_by_the_primary_profile(profile_url, households, path, query, expected):
    url = f"{profile_url}/{path.format(**households)}"

    assert found(url, query) == [households[name] for name in expected]


def test_group_profiles_by_phone_and_their_required_parameters(profile_url):
    lead = minimal_profile(
        PhoneNumbers=[{"PhoneNumber": "404-555-0123", "PhoneType": "Mobile"}],
        Groups=[{"GroupType": "Team", "GroupName": "Blue", "IsPrimary": True}],
    )
    lead_id = post_json(profile_url, lead).json()["ProfileId"]

    assert found(f"{profile_url}/Group", "phoneNumber=(404) 555 0123&phoneType=mobile&groupType=team") == [
        lead_id
    ]
    assert send("GET", f"{profile_url}/Group?phoneNumber=4045550123").json()["ModelState"] == {
        "groupType": ["The groupType query parameter is required."]
    }
    assert list(send("GET", f"{profile_url}/Group?groupType=Team").json()["ModelState"]) == ["emailAddress"]
    assert send("GET", f"{profile_url}/Group/99999999?groupType=Team").status_code == 404


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/Address", "city=Roswell&stateProvince=GA"),
        ("/Group", "emailAddress=lead@example.com&groupType=Team"),
        ("", "attributes[0].Key=source"),
        ("", "phoneNumber=4045550188&phoneType=home"),
    ],
    ids=["address", "group", "attributes", "phone-type"],
)
@pytest.mark.parametrize("prefix", ["", "/Profiles"])
def test_every_search_answers_403_past_its_limit(prefix, path, query):
    member = minimal_profile(
        Emails=[{"EmailAddress": "lead@example.com"}],
        Addresses=[address("1 Main St")],
        PhoneNumbers=[{"PhoneNumber": "404-555-0188", "PhoneType": "Home"}],
        Groups=[{"GroupType": "Team", "GroupName": "Blue", "IsPrimary": True}],
        ProfilePreferences=[
            {"FilterId": "news", "PreferenceType": 1, "PreferenceAttributes": [{"Key": "source"}]}
        ],
    )
    with Served({"MAX_SEARCH_RESULTS": 2}) as served:
        url = f"{served.url}{prefix}/acme/Profile{path}?{query}"
        answers = []
        for _ in range(3):
            post_json(f"{served.url}/acme/Profile", member)
            answers.append(send("GET", url))

    assert [(a.status_code, len(a.json()) if a.status_code == 200 else None) for a in answers] == [
        (200, 1), (200, 2), (403, None)
    ]  # fmt: skip
    assert answers[-1].json() == {"Message": "The search matches more than 2 profiles; narrow it."}
