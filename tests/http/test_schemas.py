"""The documented validation rules, over real HTTP: at each limit accepted, one past it rejected."""

from __future__ import annotations

import pytest
import requests
from helpers import auth, minimal_profile, patch, post_json, send_xml, warnings_of

ADDRESS = {"Address1": "1 Main St", "City": "Atlanta", "StateProvince": "GA", "PostalCode": "30301"}
EMAIL = {"EmailAddress": "ann@example.com"}


def with_address(**fields: object) -> dict:
    return minimal_profile(Addresses=[{**ADDRESS, **fields}])


def with_email(**fields: object) -> dict:
    return minimal_profile(Emails=[{**EMAIL, **fields}])


def without(entry: dict, key: str) -> dict:
    return {name: value for name, value in entry.items() if name != key}


def max_message(field: str, limit: int) -> str:
    return f"The field {field} must be a string with a maximum length of {limit}."


def range_message(field: str, low: int, high: int) -> str:
    return (
        f"The field {field} must be a string with a minimum length of {low} and a maximum length of {high}."
    )


def required(field: str) -> str:
    return f"The {field} field is required."


# (profile-level or entry-level builder, field, longest accepted, path of the error, its message)
LENGTH_RULES = [
    (minimal_profile, "CustomerType", 100, "CustomerType", max_message("CustomerType", 100)),
    (minimal_profile, "DefaultLocale", 15, "DefaultLocale", max_message("DefaultLocale", 15)),
    (with_address, "Address1", 125, "Addresses[0].Address1", range_message("Address1", 1, 125)),
    (with_address, "Address2", 125, "Addresses[0].Address2", max_message("Address2", 125)),
    (with_address, "City", 50, "Addresses[0].City", range_message("City", 1, 50)),
    (with_address, "StateProvince", 50, "Addresses[0].StateProvince", range_message("StateProvince", 2, 50)),
    (with_address, "PostalCode", 15, "Addresses[0].PostalCode", range_message("PostalCode", 1, 15)),
    (
        with_address,
        "CountryCode_Numeric",
        3,
        "Addresses[0].CountryCode_Numeric",
        max_message("CountryCode_Numeric", 3),
    ),
    (
        with_address,
        "CountryCode_Alpha2",
        2,
        "Addresses[0].CountryCode_Alpha2",
        max_message("CountryCode_Alpha2", 2),
    ),
    (
        with_address,
        "CountryCode_Alpha3",
        3,
        "Addresses[0].CountryCode_Alpha3",
        max_message("CountryCode_Alpha3", 3),
    ),
    (with_address, "AddressType", 100, "Addresses[0].AddressType", max_message("AddressType", 100)),
    (with_email, "EmailAddress", 256, "Emails[0].EmailAddress", range_message("EmailAddress", 1, 256)),
    (with_email, "EmailAddressType", 100, "Emails[0].EmailAddressType", max_message("EmailAddressType", 100)),
]


def digits(count: int) -> str:
    """A value of ``count`` characters that is also a plausible country code, so no other rule fires."""
    return ("8" * count) if count else ""


@pytest.mark.parametrize(
    ("build", "field", "limit", "path", "message"), LENGTH_RULES, ids=[rule[3] for rule in LENGTH_RULES]
)
def test_length_at_the_limit_is_accepted(profile_url, build, field, limit, path, message):
    response = post_json(profile_url, build(**{field: digits(limit)}))

    assert response.status_code == 201, response.text
    stored = response.json()
    assert digits(limit) in str(stored)


@pytest.mark.parametrize(
    ("build", "field", "limit", "path", "message"), LENGTH_RULES, ids=[rule[3] for rule in LENGTH_RULES]
)
def test_length_one_over_the_limit_is_rejected(
    profile_url, served, client_id, build, field, limit, path, message
):
    response = post_json(profile_url, build(**{field: digits(limit + 1)}))

    assert response.status_code == 400
    assert response.json() == {"Message": "The request is invalid.", "ModelState": {path: [message]}}
    assert served.profiles(client_id) == []


def test_lengths_count_utf16_code_units_as_dotnet_does(profile_url):
    fits = post_json(profile_url, minimal_profile(CustomerType="😀" * 50))
    over = post_json(profile_url, minimal_profile(CustomerType="😀" * 50 + "a"))

    assert fits.status_code == 201
    assert fits.json()["CustomerType"] == "😀" * 50
    assert over.status_code == 400
    assert over.json()["ModelState"] == {"CustomerType": [max_message("CustomerType", 100)]}


def test_state_province_below_its_minimum_is_rejected(profile_url):
    response = post_json(profile_url, with_address(StateProvince="G"))

    assert response.json()["ModelState"] == {
        "Addresses[0].StateProvince": [range_message("StateProvince", 2, 50)]
    }


@pytest.mark.parametrize(
    ("body", "path", "field"),
    [
        (minimal_profile(Addresses=[without(ADDRESS, "Address1")]), "Addresses[0].Address1", "Address1"),
        (minimal_profile(Addresses=[without(ADDRESS, "City")]), "Addresses[0].City", "City"),
        (
            minimal_profile(Addresses=[without(ADDRESS, "StateProvince")]),
            "Addresses[0].StateProvince",
            "StateProvince",
        ),
        (
            minimal_profile(Addresses=[without(ADDRESS, "PostalCode")]),
            "Addresses[0].PostalCode",
            "PostalCode",
        ),
        (with_address(City=None), "Addresses[0].City", "City"),
        (with_address(City=""), "Addresses[0].City", "City"),
        (with_address(City="   "), "Addresses[0].City", "City"),
        (minimal_profile(Emails=[{"EmailAddressType": "home"}]), "Emails[0].EmailAddress", "EmailAddress"),
    ],
    ids=["Address1", "City", "StateProvince", "PostalCode", "null", "empty", "blank", "EmailAddress"],
)
def test_required_fields(profile_url, body, path, field):
    response = post_json(profile_url, body)

    assert response.status_code == 400
    assert response.json()["ModelState"] == {path: [required(field)]}


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"IsActive": "on"}, "IsActive", "Error converting value \"on\" to type 'System.Boolean'."),
        ({"RegistrationConfirmed": [1]}, "RegistrationConfirmed", "Error converting value [1] to type 'System.Boolean'."),
        ({"CustomerType": {"x": 5}}, "CustomerType", "Error converting value {\"x\": 5} to type 'System.String'."),
        ({"CustomerType": ["a"]}, "CustomerType", "Error converting value [\"a\"] to type 'System.String'."),
        ({"Addresses": {"Address1": "x"}}, "Addresses", "Expected a collection: a JSON array, or XML entry elements."),
        ({"Emails": "ann@example.com"}, "Emails", "Expected a collection: a JSON array, or XML entry elements."),
        ({"CustomerName": "Ann"}, "CustomerName", "Expected an object: a JSON object, or an XML element with child elements."),
        ({"Groups": ["x"]}, "Groups[0]", "Expected an object: a JSON object, or an XML element with child elements."),
        ({"Emails": [{**EMAIL, "IsDefault": "yes"}]}, "Emails[0].IsDefault", "Error converting value \"yes\" to type 'System.Boolean'."),
    ],
    ids=["bool-string", "bool-list", "string-object", "string-list", "collection-object",
         "collection-string", "object-string", "entry-string", "entry-bool"],
)  # fmt: skip
def test_types_are_enforced(profile_url, fields, path, message):
    response = post_json(profile_url, minimal_profile(**fields))

    assert response.status_code == 400
    assert response.json()["ModelState"] == {path: [message]}


def test_a_body_that_is_not_an_object_is_rejected(profile_url):
    response = post_json(profile_url, [minimal_profile()])

    assert response.status_code == 400
    assert response.json()["ModelState"] == {
        "body": ["Expected an object: a JSON object, or an XML element with child elements."]
    }


@pytest.mark.parametrize("field", ["IsActive", "CustomerType", "Addresses", "CustomerName"])
def test_null_means_absent(profile_url, field):
    response = post_json(profile_url, minimal_profile(**{field: None}))

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("collection", "entry", "noun"),
    [("Addresses", ADDRESS, "address"), ("Emails", EMAIL, "email")],
)
def test_at_most_one_default_per_collection(profile_url, collection, entry, noun):
    one = post_json(
        profile_url,
        minimal_profile(**{collection: [{**entry, "IsDefault": True}, {**entry, "IsDefault": False}, entry]}),
    )
    three = post_json(profile_url, minimal_profile(**{collection: [{**entry, "IsDefault": True}] * 3}))

    assert one.status_code == 201
    assert three.status_code == 400
    assert three.json()["ModelState"] == {
        collection: [f"Only one {noun} can be the default; 3 have IsDefault true."]
    }


def test_phone_numbers_may_all_be_default(profile_url):
    phone = {"PhoneNumber": "404-555-0100", "IsDefault": True}

    assert post_json(profile_url, minimal_profile(PhoneNumbers=[phone, phone])).status_code == 201


def test_same_alternate_id_twice_in_one_request_is_kept_once_ignoring_case(profile_url, served, client_id):
    pairs = [
        {"AlternateIdType": "crm", "AlternateId": "A-1"},
        {"AlternateIdType": "crm", "AlternateId": "A-2"},
        {"AlternateIdType": "CRM", "AlternateId": "a-1"},
    ]

    response = post_json(profile_url, minimal_profile(AlternateIds=pairs))

    assert response.status_code == 201, response.text
    assert response.json()["AlternateIds"] == pairs[:2]
    assert "ignored 'AlternateIds[2]': it repeats an earlier AlternateId" in warnings_of(response)
    assert served.profiles(client_id)[0]["AlternateIds"] == pairs[:2]


def test_an_overwrite_and_a_patch_keep_a_repeated_alternate_id_once(profile_url, served, client_id):
    url = f"{profile_url}/{post_json(profile_url, minimal_profile()).json()['ProfileId']}"
    pair, again = (
        {"AlternateIdType": "crm", "AlternateId": "A-1"},
        {"AlternateIdType": "CRM", "AlternateId": "a-1"},
    )

    replaced = requests.put(url, json=minimal_profile(AlternateIds=[pair, again]), headers=auth(), timeout=10)
    patched = patch(url, [{"op": "add", "path": "/AlternateIds/-", "value": again}])

    assert (replaced.status_code, replaced.json()["AlternateIds"]) == (200, [pair])
    assert (patched.status_code, patched.json()["AlternateIds"]) == (200, [pair])
    for response in (replaced, patched):
        assert "ignored 'AlternateIds[1]': it repeats an earlier AlternateId" in warnings_of(response)
    assert served.profiles(client_id)[0]["AlternateIds"] == [pair]


def test_same_alternate_id_twice_in_an_xml_request_is_kept_once(profile_url, served, client_id):
    entry = "<AlternateIdEntry><AlternateId>{}</AlternateId><AlternateIdType>crm</AlternateIdType></AlternateIdEntry>"
    inner = f"<AlternateIds>{entry.format('A-1')}{entry.format('a-1')}</AlternateIds>"

    response = send_xml("POST", profile_url, "CreateUserProfile", inner, Accept="application/json")

    assert response.status_code == 201, response.text
    assert response.json()["AlternateIds"] == [{"AlternateIdType": "crm", "AlternateId": "A-1"}]
    assert "ignored 'AlternateIds[1]': it repeats an earlier AlternateId" in warnings_of(response)


def test_every_error_is_reported_at_once(profile_url):
    body = minimal_profile(
        CustomerType="x" * 101,
        IsActive="no",
        Addresses=[
            {**ADDRESS, "City": "", "IsDefault": True},
            {**ADDRESS, "PostalCode": None, "IsDefault": True},
        ],
        Emails=[{"EmailAddress": ""}],
    )

    response = post_json(profile_url, body)

    assert response.status_code == 400
    assert response.json()["ModelState"] == {
        "CustomerType": [max_message("CustomerType", 100)],
        "IsActive": ["Error converting value \"no\" to type 'System.Boolean'."],
        "Addresses[0].City": [required("City")],
        "Addresses[1].PostalCode": [required("PostalCode")],
        "Emails[0].EmailAddress": [required("EmailAddress")],
        "Addresses": ["Only one address can be the default; 2 have IsDefault true."],
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"CustomerName": {"FirstName": "x" * 5000, "LastName": "y" * 5000}},
        {"PhoneNumbers": [{"PhoneNumber": "9" * 500, "PhoneType": "t" * 500}]},
        {"AlternateIds": [{"AlternateIdType": "t" * 1000, "AlternateId": "i" * 1000}]},
        {"Groups": [{"GroupName": "g" * 1000, "GroupType": "t" * 1000, "IsPrimary": True}]},
        {"ProfileTags": [{"Name": "n" * 1000}], "CustomFields": [{"Name": "n" * 1000, "Value": "v" * 5000}]},
    ],
    ids=["names", "phones", "alternate-ids", "groups", "tags-and-custom-fields"],
)
def test_fields_without_documented_limits_are_not_limited(profile_url, fields):
    assert post_json(profile_url, minimal_profile(**fields)).status_code == 201
