"""Bodies read as the vendor's stack reads them, over real HTTP: JSON values converted as Json.NET
converts them, XML elements read in DataContractSerializer's member order."""

from __future__ import annotations

import json
import re

import pytest
from helpers import (
    JSON,
    fixture_bytes,
    fixture_json,
    minimal_profile,
    patch,
    post_json,
    send,
    send_bytes,
    send_xml,
    vendor,
    warnings_of,
)
from marshmallow import Schema, fields
from mypreferences_sandbox.contract import schemas
from mypreferences_sandbox.wire import formats

# An entry that passes validation, for each collection a path below may point into.
ENTRIES = {
    "Addresses": {"Address1": "1 Main St", "City": "Atlanta", "StateProvince": "GA", "PostalCode": "30301"},
    "PhoneNumbers": {"PhoneNumber": "404-555-0100"},
    "Groups": {"GroupName": "vip"},
    "AlternateIds": {"AlternateIdType": "crm", "AlternateId": "C-1"},
    "Emails": {"EmailAddress": "ann@example.com"},
}
MARK = "value-goes-here"


def body_with(path: str, raw: str) -> bytes:
    """A small valid create body carrying the JSON text ``raw`` at ``path`` (``IsActive``,
    ``CustomerName.FirstName``, ``Addresses[0].IsDefault``)."""
    body = minimal_profile()
    *parents, name = path.split(".")
    target = body
    for parent in parents:
        key = parent.split("[")[0]
        if parent.endswith("]"):
            body[key] = [dict(ENTRIES[key])]
            target = body[key][0]
        else:
            target = body[key]
    target[name] = MARK
    return json.dumps(body).replace(json.dumps(MARK), raw).encode()


def at(document: object, path: str) -> object:
    """The value at a ModelState-style ``path`` of a JSON document."""
    for step in re.findall(r"\[\d+\]|[^.\[\]]+", path):
        document = document[int(step[1:-1])] if step.startswith("[") else document[step]
    return document


def stored(profile_url: str, response) -> dict:
    """The profile a create answered, as a GET reads it back."""
    assert response.status_code == 201, response.text
    return vendor.get(f"{profile_url}/{response.json()['ProfileId']}", timeout=10).json()


def body_warnings(response) -> list[str]:
    """The warnings reading the request body drew (what it converted, skipped or ignored), in order;
    not those of other parts (authentication, accounts)."""
    return [line for line in warnings_of(response) if line.startswith(("converted ", "skipped ", "ignored "))]


def converted(path: str, raw: str, value: object) -> str:
    return f"converted {json.dumps(json.loads(raw))} to {json.dumps(value)} for '{path}'"


# --- JSON: Json.NET's conversions ------------------------------------------------------------

# (path, the JSON text sent, the value stored)
CONVERSIONS = [
    ("IsActive", '"true"', True),
    ("IsActive", '"False"', False),
    ("RegistrationConfirmed", '"TRUE"', True),
    ("PreservePreferences", '" false "', False),
    ("IsActive", "0", False),
    ("RegistrationConfirmed", "1", True),
    ("RegistrationConfirmed", "-7", True),
    ("RegistrationConfirmed", "0.5", True),
    ("PreservePreferences", "0.0", False),
    ("Emails[0].IsDefault", '"true"', True),
    ("Addresses[0].IsDefault", "1", True),
    ("PhoneNumbers[0].IsMobile", '"True"', True),
    ("Groups[0].IsPrimary", "0", False),
    ("CustomerName.MiddleName", "5", "5"),
    ("CustomerName.MiddleName", "-12", "-12"),
    ("CustomerName.MiddleName", "123456789012345678901234567890", "123456789012345678901234567890"),
    ("CustomerName.MiddleName", "1.5", "1.5"),
    ("CustomerName.MiddleName", "1.50", "1.5"),
    ("CustomerName.MiddleName", "1e3", "1000"),
    ("CustomerName.MiddleName", "1e21", "1E+21"),
    ("CustomerName.MiddleName", "0.00001", "1E-05"),
    ("CustomerName.MiddleName", "0.30000000000000004", "0.3"),
    ("CustomerName.MiddleName", "-0.0", "0"),
    ("CustomerName.MiddleName", "true", "True"),
    ("DefaultLocale", "false", "False"),
    ("CustomerName.FirstName", "7", "7"),
    ("Addresses[0].CountryCode_Numeric", "840", "840"),
    ("PhoneNumbers[0].PhoneNumber", "4045550100", "4045550100"),
    ("AlternateIds[0].AlternateId", "12345", "12345"),
    ("Addresses[0].Address2", "42", "42"),
]


@pytest.mark.parametrize(("path", "raw", "value"), CONVERSIONS, ids=[f"{p}={r}" for p, r, _ in CONVERSIONS])
def test_json_values_are_converted_as_json_net_converts_them(profile_url, path, raw, value):
    response = send_bytes("POST", profile_url, body_with(path, raw), JSON)

    assert at(stored(profile_url, response), path) == value
    assert body_warnings(response) == [converted(path, raw, value)]


# (path, the JSON text sent, the error): what Json.NET refuses stays an error, in its words.
REFUSALS = [
    ("IsActive", '"yes"', "Error converting value \"yes\" to type 'System.Boolean'."),
    ("IsActive", '"1"', "Error converting value \"1\" to type 'System.Boolean'."),
    ("IsActive", '""', "Error converting value \"\" to type 'System.Boolean'."),
    ("IsActive", "9223372036854775808", "Error converting value 9223372036854775808 to type 'System.Boolean'."),
    ("IsActive", "[true]", "Error converting value [true] to type 'System.Boolean'."),
    ("Emails[0].IsDefault", "{}", "Error converting value {} to type 'System.Boolean'."),
    ("CustomerType", '["a"]', "Error converting value [\"a\"] to type 'System.String'."),
    ("CustomerName.FirstName", '{"a": 1}', "Error converting value {\"a\": 1} to type 'System.String'."),
    ("Addresses[0].CountryCode_Numeric", "8400",
     "The field CountryCode_Numeric must be a string with a maximum length of 3."),
]  # fmt: skip


@pytest.mark.parametrize(("path", "raw", "message"), REFUSALS, ids=[f"{p}={r}" for p, r, _ in REFUSALS])
def test_what_json_net_refuses_is_a_400(profile_url, served, client_id, path, raw, message):
    response = send_bytes("POST", profile_url, body_with(path, raw), JSON)

    assert response.status_code == 400
    assert response.json()["ModelState"] == {path: [message]}
    assert served.profiles(client_id) == []


def test_each_conversion_is_named_in_a_warning(profile_url):
    body = minimal_profile(
        IsActive="true", Addresses=[{**ENTRIES["Addresses"], "CountryCode_Numeric": 840}], Emial="x"
    )

    response = post_json(profile_url, body)

    profile = stored(profile_url, response)
    assert profile["IsActive"] is True
    assert profile["Addresses"][0]["Country"] == "United States"
    assert body_warnings(response) == [
        "converted \"true\" to true for 'IsActive'",
        "converted 840 to \"840\" for 'Addresses[0].CountryCode_Numeric'",
        "ignored unknown field 'Emial'",
    ]


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_updates_are_converted_too(profile_url, method):
    url = f"{profile_url}/{post_json(profile_url, minimal_profile()).json()['ProfileId']}"

    response = send(method, url, {"CustomerType": 7, "IsActive": "false"})

    assert response.status_code == 200, response.text
    assert (response.json()["CustomerType"], response.json()["IsActive"]) == ("7", False)
    assert body_warnings(response) == [
        "converted 7 to \"7\" for 'CustomerType'",
        "converted \"false\" to false for 'IsActive'",
    ]


def test_consents_are_converted_too(base_url, client_id, profile_url):
    profile_id = post_json(profile_url, minimal_profile()).json()["ProfileId"]
    consent = {"ConsentType": "email", "ConsentVersion": 2, "Locale": "en_US", "ConsentStatus": 1}

    response = send("POST", f"{base_url}/{client_id}/Consents/{profile_id}", {"Consents": [consent]})

    assert response.status_code == 200, response.text
    assert response.json()["Consents"][0]["ConsentVersion"] == "2"
    assert body_warnings(response) == ["converted 2 to \"2\" for 'Consents[0].ConsentVersion'"]


def test_json_patch_values_are_not_converted(profile_url):
    created = post_json(profile_url, minimal_profile()).json()

    response = patch(
        f"{profile_url}/{created['ProfileId']}", [{"op": "replace", "path": "/IsActive", "value": "false"}]
    )

    assert response.status_code == 400
    assert response.json()["ModelState"] == {
        "IsActive": ["Error converting value \"false\" to type 'System.Boolean'."]
    }


# --- XML: DataContractSerializer's member order ----------------------------------------------

NAME = "<CustomerName><FirstName>Ann</FirstName><LastName>Example</LastName></CustomerName>"
ADDRESS = (
    "<Address1>1 Main St</Address1><Address2>Apt 2</Address2><City>Atlanta</City>"
    "<CountryCode_Alpha2>US</CountryCode_Alpha2><CountryCode_Alpha3>USA</CountryCode_Alpha3>"
    "<CountryCode_Numeric>840</CountryCode_Numeric><PostalCode>30301</PostalCode>"
    "<StateProvince>GA</StateProvince><AddressType>home</AddressType><IsDefault>true</IsDefault>"
)


def skipped(path: str) -> str:
    return (
        f"skipped XML element '{path}': out of order (DataContractSerializer reads members in declared order)"
    )


def repeated(path: str) -> str:
    return f"skipped XML element '{path}': repeated (DataContractSerializer reads each member once, in declared order)"


# (the CreateUserProfile's elements, the values stored by path, the warnings)
ORDERS = [
    pytest.param(
        f"{NAME}<CustomerType>Member</CustomerType><IsActive>false</IsActive><DefaultLocale>fr_CA</DefaultLocale>",
        {"CustomerName.FirstName": "Ann", "CustomerType": "Member", "IsActive": False, "DefaultLocale": "fr_CA"},
        [],
        id="the-samples-order",
    ),
    pytest.param(
        f"<Addresses><CreateAddressEntry>{ADDRESS}</CreateAddressEntry></Addresses>",
        {"Addresses[0].AddressType": "home", "Addresses[0].IsDefault": True, "Addresses[0].StateProvince": "GA"},
        [],
        id="an-address-in-the-samples-order",
    ),
    pytest.param(
        f"<CustomerType>Member</CustomerType>{NAME}",
        {"CustomerName.FirstName": None, "CustomerType": "Member"},
        [skipped("CustomerName")],
        id="out-of-order",
    ),
    pytest.param(
        f"<Emails><EmailEntry><EmailAddress>a@example.com</EmailAddress></EmailEntry></Emails>{NAME}"
        "<IsActive>false</IsActive>",
        {"Emails[0].EmailAddress": "a@example.com", "CustomerName.LastName": None, "IsActive": False},
        [skipped("CustomerName")],
        id="later-members-still-read",
    ),
    pytest.param(
        "<CustomerName><LastName>Example</LastName><FirstName>Ann</FirstName></CustomerName>",
        {"CustomerName.FirstName": None, "CustomerName.LastName": "Example"},
        [skipped("CustomerName.FirstName")],
        id="nested-out-of-order",
    ),
    pytest.param(
        "<Emails><EmailEntry><EmailAddress>a@example.com</EmailAddress><EmailAddressType>home</EmailAddressType>"
        "</EmailEntry><EmailEntry><EmailAddress>b@example.com</EmailAddress><IsDefault>false</IsDefault>"
        "<EmailAddressType>work</EmailAddressType></EmailEntry></Emails>",
        {"Emails[0].EmailAddressType": "home", "Emails[1].EmailAddress": "b@example.com",
         "Emails[1].EmailAddressType": None},
        [skipped("Emails[1].EmailAddressType")],
        id="each-entry-read-afresh",
    ),
    pytest.param(
        "<CustomerType>First</CustomerType><CustomerType>Second</CustomerType>",
        {"CustomerType": "First"},
        [repeated("CustomerType")],
        id="repeated-first-wins",
    ),
    pytest.param(
        '<CustomerType i:nil="true" /><CustomerType>Member</CustomerType>',
        {"CustomerType": "Customer"},
        [repeated("CustomerType")],
        id="nil-counts-as-read",
    ),
    pytest.param(
        f"{NAME}<Nickname>Annie</Nickname><CustomerType>Member</CustomerType>",
        {"CustomerName.FirstName": "Ann", "CustomerType": "Member"},
        ["ignored unknown field 'Nickname'"],
        id="unknown-elements-keep-the-position",
    ),
    pytest.param(
        "<CustomerType>Member</CustomerType><CustomerName><Typo>x</Typo></CustomerName>",
        {"CustomerType": "Member"},
        [skipped("CustomerName")],
        id="a-skipped-element-is-not-read-within",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("inner", "values", "warnings"), ORDERS)
def test_xml_is_read_in_declared_member_order(profile_url, inner, values, warnings):
    response = send_xml("POST", profile_url, "CreateUserProfile", inner, Accept=JSON)

    profile = stored(profile_url, response)
    assert {path: at(profile, path) for path in values} == values
    assert body_warnings(response) == warnings


# (the CreateUserProfile's elements, the errors): a member skipped may leave a required one missing.
LOSSES = [
    pytest.param(
        "<Emails><EmailEntry><IsDefault>true</IsDefault><EmailAddress>a@example.com</EmailAddress></EmailEntry></Emails>",
        {"Emails[0].EmailAddress": ["The EmailAddress field is required."]},
        id="email-after-its-flag",
    ),
    pytest.param(
        "<Addresses><CreateAddressEntry><Address1>1 Main St</Address1><AddressType>home</AddressType>"
        "<City>Atlanta</City><PostalCode>30301</PostalCode><StateProvince>GA</StateProvince>"
        "</CreateAddressEntry></Addresses>",
        {f"Addresses[0].{name}": [f"The {name} field is required."] for name in ("City", "StateProvince", "PostalCode")},
        id="an-address-in-alphabetical-order",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("inner", "model_state"), LOSSES)
def test_xml_elements_skipped_can_make_a_400(profile_url, served, client_id, inner, model_state):
    response = send_xml("POST", profile_url, "CreateUserProfile", inner, Accept=JSON)

    assert response.status_code == 400
    assert response.json()["ModelState"] == model_state
    assert served.profiles(client_id) == []
    # What explains the 400 reaches the client with it.
    assert any("out of order" in warning for warning in body_warnings(response))


CONSENT = (
    "<ConsentStatus>Granted</ConsentStatus><ConsentType>email</ConsentType>"
    "<ConsentVersion>1</ConsentVersion><Locale>en_US</Locale>"
)
DATE = "<ConsentDate>2026-01-02T03:04:05Z</ConsentDate>"


@pytest.mark.parametrize(
    ("consent", "read", "warnings"),
    [(DATE + CONSENT, True, []), (CONSENT + DATE, False, [skipped("Consents[0].ConsentDate")])],
    ids=["alphabetical", "date-last"],
)
def test_a_shape_without_a_sample_is_read_in_alphabetical_order(
    base_url, client_id, profile_url, consent, read, warnings
):
    profile_id = post_json(profile_url, minimal_profile()).json()["ProfileId"]
    inner = f"<Consents><CreateCustomerConsent>{consent}</CreateCustomerConsent></Consents>"

    response = send_xml(
        "POST",
        f"{base_url}/{client_id}/Consents/{profile_id}",
        "CreateCustomerConsentList",
        inner,
        Accept=JSON,
    )

    assert response.status_code == 200, response.text
    recorded = response.json()["Consents"][0]
    assert recorded["ConsentType"] == "email"
    assert (recorded["ConsentDate"] == "2026-01-02T03:04:05.000Z") is read
    assert body_warnings(response) == warnings


@pytest.mark.parametrize(
    ("xml", "twin"),
    [
        ("vendor/create-profile-request.xml", "vendor/create-profile-request.json"),
        ("create-profile.xml", "create-profile.json"),
    ],
)
def test_the_xml_samples_read_fully_as_their_json_twins(xml, twin):
    body = formats.read_body(
        fixture_bytes(xml), "application/xml", None, schemas.CreateUserProfile(), "CreateUserProfile", 32
    )

    assert body.warnings == []
    assert body.data == fixture_json(twin)


def request_shapes(schema: Schema) -> list[Schema]:
    """``schema`` and every shape nested in it."""
    nested = [
        field.inner.schema if isinstance(field, fields.List) else field.schema
        for field in schema.fields.values()
        if isinstance(field, fields.Nested) or isinstance(getattr(field, "inner", None), fields.Nested)
    ]
    return [schema, *(shape for inner in nested for shape in request_shapes(inner))]


@pytest.mark.parametrize(
    "shape",
    request_shapes(schemas.CreateUserProfile())
    + request_shapes(schemas.CreateCustomerConsentList())
    + request_shapes(schemas.ReasonCode()),
    ids=lambda shape: type(shape).__name__,
)
def test_each_xml_request_shape_orders_all_its_members(shape):
    order = type(shape).xml_order

    assert not order or sorted(order) == sorted(shape.fields)
