"""Preferences over real HTTP: on a profile and its contact elements, upserted by AlternateId,
archived, searched by their attributes, in JSON and XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from helpers import (
    JSON,
    NAMESPACE,
    XML,
    find,
    minimal_profile,
    post_json,
    send,
    send_bytes,
    send_xml,
    warnings_of,
    xml_of,
)
from marshmallow import Schema, fields
from mypreferences_sandbox.contract.schemas import CreateUserProfile

PAIR = {"AlternateIdType": "crm", "AlternateId": "C-7"}
NEWS = {"FilterId": "news", "PreferenceType": 1, "PreferenceAttributes": [{"Key": "source", "Value": "web"}]}
PROMO = {"FilterId": "promo", "PreferenceType": 2, "FrequencyId": "weekly"}


@pytest.fixture
def created(profile_url) -> dict:
    body = minimal_profile(
        AlternateIds=[PAIR],
        Emails=[
            {"EmailAddress": "ann@example.com", "EmailAddressType": "Personal", "EmailPreferences": [PROMO]}
        ],
        PhoneNumbers=[{"PhoneNumber": "404-555-0100", "PhoneType": "Mobile"}],
        ProfilePreferences=[NEWS],
    )
    response = post_json(profile_url, body)
    assert response.status_code == 201, response.text
    return response.json()


def filters(holder: dict, member: str) -> list[tuple[str, int]]:
    return [(p["FilterId"], p["PreferenceType"]) for p in holder.get(member, [])]


def test_preferences_are_stored_with_what_the_vendor_records(created):
    [news] = created["ProfilePreferences"]
    [promo] = created["Emails"][0]["EmailPreferences"]

    assert news == {
        "ProgramId": None, "ChannelId": None, "Consents": [], "MatchType": "Expressed", "ReasonCode": None,
        "ExpirationDate": None, "PreferenceStatus": "Active", "LastModifiedDate": created["Edited"]["CreateDate"],
        "UserId": "tester", "SourceId": None, "FilterId": "news", "PreferenceType": 1, "FrequencyId": None,
        "PreferenceAttributes": [{"Key": "source", "Value": "web"}],
    }  # fmt: skip
    assert (promo["ChannelId"], promo["FrequencyId"], promo["PreferenceType"]) == ("Email", "weekly", 2)
    # A contact element without preferences is answered as the documented samples are: without them.
    assert "PhonePreferences" not in created["PhoneNumbers"][0]


@pytest.mark.parametrize(
    ("preference", "key", "message"),
    [
        ({"PreferenceType": 1}, "ProfilePreferences[0].FilterId", "The FilterId field is required."),
        ({"FilterId": "x" * 51, "PreferenceType": 1}, "ProfilePreferences[0].FilterId",
         "The field FilterId must be a string with a minimum length of 1 and a maximum length of 50."),
        ({"FilterId": "news", "PreferenceType": 3}, "ProfilePreferences[0].PreferenceType",
         "Error converting value 3 to type 'PreferenceTypes'; use one of 1 (OptIn), 2 (OptOut)."),
        ({"FilterId": "news", "PreferenceType": 1, "FrequencyId": "f" * 21}, "ProfilePreferences[0].FrequencyId",
         "The field FrequencyId must be a string with a maximum length of 20."),
    ],
)  # fmt: skip
def test_a_preference_follows_the_documented_rules(profile_url, preference, key, message):
    response = post_json(profile_url, minimal_profile(ProfilePreferences=[preference]))

    assert response.status_code == 400
    assert response.json()["ModelState"] == {key: [message]}


@pytest.mark.parametrize("prefix", ["", "/Profiles"])
def test_upsert_by_alternate_id_replaces_by_filter_and_adds_missing_contact_elements(
    profile_url, base_url, created, prefix
):
    url = (
        f"{profile_url.replace(base_url, base_url + prefix)}/Preferences/AlternateIdType/CRM/AlternateId/c-7"
    )
    body = {
        "ProfilePreferences": [
            {"FilterId": "NEWS", "PreferenceType": 2},
            {"FilterId": "events", "PreferenceType": 1},
        ],
        "Emails": [
            {
                "EmailAddress": "ANN@example.com",
                "EmailPreferences": [{"FilterId": "promo", "PreferenceType": 1}],
            },
            {
                "EmailAddress": "bo@example.com",
                "EmailPreferences": [{"FilterId": "promo", "PreferenceType": 1}],
            },
        ],
    }

    response = send("POST", url, body)

    profile = response.json()
    assert response.status_code == 200, response.text
    assert filters(profile, "ProfilePreferences") == [("NEWS", 2), ("events", 1)]
    assert [(e["EmailAddress"], filters(e, "EmailPreferences")) for e in profile["Emails"]] == [
        ("ann@example.com", [("promo", 1)]),
        ("bo@example.com", [("promo", 1)]),
    ]
    assert filters(profile["PhoneNumbers"][0], "PhonePreferences") == []


def test_upsert_refuses_what_it_cannot_read(profile_url, created):
    url = f"{profile_url}/Preferences/AlternateIdType/crm/AlternateId/C-7"

    nobody = send(
        "POST",
        f"{profile_url}/Preferences/AlternateIdType/crm/AlternateId/none",
        {"ProfilePreferences": [NEWS]},
    )
    xml = send_xml("POST", url, "UpsertPreferences", "")
    invalid = send("POST", url, {"ProfilePreferences": [{"FilterId": "x"}]})

    assert nobody.status_code == 404
    assert xml.status_code == 415
    assert (invalid.status_code, list(invalid.json()["ModelState"])) == (
        400,
        ["ProfilePreferences[0].PreferenceType"],
    )


def test_upsert_names_types_a_configured_account_lacks_with_404(base_url, client_id, control):
    control.configure_account(client_id, {"EmailTypes": ["Personal"], "AlternateIdTypes": ["crm"]})
    post_json(f"{base_url}/{client_id}/Profile", minimal_profile(Emails=[], AlternateIds=[PAIR]))
    url = f"{base_url}/{client_id}/Profile/Preferences/AlternateIdType/crm/AlternateId/C-7"
    email = {"EmailAddress": "x@example.com", "EmailPreferences": [PROMO]}

    refused = send("POST", url, {"Emails": [email | {"EmailAddressType": "Work"}]})
    accepted = send("POST", url, {"Emails": [email | {"EmailAddressType": "personal"}]})

    assert refused.status_code == 404
    assert "EmailAddressType 'Work'" in refused.json()["Message"]
    assert accepted.status_code == 200


@pytest.mark.parametrize(
    ("body", "left"),
    [
        ({"GlobalDeactivate": True}, ([], [])),
        ({"ProfilePreferences": [{"FilterId": "NEWS"}]}, ([], [("promo", 2)])),
        ({"Emails": [{"EmailAddressType": "personal"}]}, ([("news", 1)], [])),
        (
            {"Emails": [{"EmailAddress": "ANN@example.com", "FilterId": "other"}]},
            ([("news", 1)], [("promo", 2)]),
        ),
        ({"Emails": [{"EmailAddressType": "Work"}]}, ([("news", 1)], [("promo", 2)])),
    ],
    ids=["global", "profile-filter", "email-type", "other-filter", "other-type"],
)
def test_archive_takes_what_it_names(profile_url, created, body, left):
    url = f"{profile_url}/{created['ProfileId']}"

    response = send("PUT", f"{profile_url}/Preferences/{created['ProfileId']}/Archive", body)

    profile = send("GET", url).json()
    assert (response.status_code, response.content, response.headers.get("Content-Type")) == (204, b"", None)
    assert (filters(profile, "ProfilePreferences"), filters(profile["Emails"][0], "EmailPreferences")) == left


def test_archived_preferences_are_no_longer_the_profiles_consent_filters(base_url, client_id, created):
    profile_id = created["ProfileId"]
    url = f"{base_url}/{client_id}/Consents/{profile_id}/Filters"
    before = send("GET", url).json()

    send(
        "PUT", f"{base_url}/{client_id}/Profile/Preferences/{profile_id}/Archive", {"GlobalDeactivate": True}
    )

    assert [entry["FilterId"] for entry in before] == ["news", "promo"]
    assert send("GET", url).json() == []


def test_archive_needs_a_contact_element_or_type_and_json(profile_url, created):
    url = f"{profile_url}/Preferences/{created['ProfileId']}/Archive"

    vague = send("PUT", url, {"Emails": [{"FilterId": "promo"}]})
    xml = send_bytes("PUT", url, b"<ArchivePreferences/>", "application/xml")
    unknown = send("PUT", f"{profile_url}/Preferences/99999999/Archive", {"GlobalDeactivate": True})

    assert (vague.status_code, list(vague.json()["ModelState"])) == (400, ["Emails[0]"])
    assert (xml.status_code, unknown.status_code) == (415, 404)


def test_profiles_by_preference_attributes_answer_only_the_matching_preferences(profile_url, created):
    other = post_json(
        profile_url, minimal_profile(ProfilePreferences=[{"FilterId": "news", "PreferenceType": 1}])
    ).json()

    response = send("GET", f"{profile_url}?attributes[0].Key=SOURCE&attributes[0].Value=Web")
    any_value = send("GET", f"{profile_url}?attributes[0].Key=source")
    none = send("GET", f"{profile_url}?attributes[0].Key=source&attributes[0].Value=mail")

    assert response.status_code == 200
    [found] = response.json()
    assert found["ProfileId"] == created["ProfileId"] != other["ProfileId"]
    assert filters(found, "ProfilePreferences") == [("news", 1)]
    assert "EmailPreferences" not in found["Emails"][0]  # promo holds no such attribute
    assert [p["ProfileId"] for p in any_value.json()] == [created["ProfileId"]]
    assert none.json() == []


def test_preferences_in_xml(profile_url):
    inner = (
        "<AlternateIds/><Emails><EmailEntry><EmailAddress>x@example.com</EmailAddress>"
        "<EmailPreferences><CreateProfilePreference><FilterId>promo</FilterId>"
        "<PreferenceType>OptOut</PreferenceType></CreateProfilePreference></EmailPreferences>"
        "</EmailEntry></Emails>"
    )

    response = send_xml("POST", profile_url, "CreateUserProfile", inner)

    assert response.status_code == 201, response.text
    [entry] = find(xml_of(response), "Emails")
    [preference] = find(entry, "EmailPreferences")
    assert preference.tag.endswith("}ProfilePreference")
    assert (find(preference, "FilterId").text, find(preference, "PreferenceType").text) == ("promo", "OptOut")
    read_back = send("GET", f"{profile_url}/{find(xml_of(response), 'ProfileId').text}", Accept=JSON).json()
    assert filters(read_back["Emails"][0], "EmailPreferences") == [("promo", 2)]


def echoed(element: ET.Element, schema: Schema, name: str) -> ET.Element:
    """``element`` as a client sends back what it was answered: as ``name``, with the members
    ``schema`` reads, in the order they were written (the generated ones left out)."""
    echo = ET.Element(f"{{{NAMESPACE}}}{name}")
    for child in element:
        known = schema.fields.get(child.tag.rpartition("}")[2])
        if isinstance(known, fields.List) and isinstance(known.inner, fields.Nested):
            entries = ET.SubElement(echo, child.tag)
            entries.extend(echoed(entry, known.inner.schema, known.metadata["xml_item"]) for entry in child)
        elif known is not None:
            echo.append(child)
    return echo


def test_preferences_the_sandbox_writes_in_xml_read_back_whole(profile_url):
    full = {
        "FilterId": "news",
        "PreferenceType": 2,
        "FrequencyId": "daily",
        "PreferenceAttributes": [{"Key": "k", "Value": "v"}],
    }
    body = minimal_profile(
        Emails=[
            {
                "EmailAddress": "ann@example.com",
                "EmailAddressType": "Home",
                "IsDefault": True,
                "EmailPreferences": [full],
            }
        ],
        PhoneNumbers=[{"PhoneNumber": "404-555-0100", "PhoneType": "Mobile", "PhonePreferences": [full]}],
        ProfilePreferences=[full],
    )
    url = f"{profile_url}/{post_json(profile_url, body).json()['ProfileId']}"
    written = xml_of(send("GET", url, Accept=XML))

    echo = ET.tostring(echoed(written, CreateUserProfile(), "CreateUserProfile"))
    response = send_bytes("PUT", url, echo, XML, Accept=JSON)

    assert (response.status_code, warnings_of(response)) == (200, [])
    profile = response.json()
    held = [
        profile["ProfilePreferences"],
        profile["Emails"][0]["EmailPreferences"],
        profile["PhoneNumbers"][0]["PhonePreferences"],
    ]
    assert [[{key: p[key] for key in full} for p in preferences] for preferences in held] == [[full]] * 3
