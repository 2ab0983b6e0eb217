"""The wire over real HTTP: media types, negotiation, XML details, warnings, and hostile bodies."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from xml.sax.saxutils import escape

import pytest
import requests
from helpers import (
    JSON,
    XML,
    Served,
    auth,
    fixture_bytes,
    fixture_json,
    minimal_profile,
    post_json,
    send_bytes,
    vendor,
    warnings_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mypreferences_sandbox.contract import schemas
from mypreferences_sandbox.contract.errors import BadRequest
from mypreferences_sandbox.testing.control_client import ControlClient

NS = "http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models"
OBJECT_MESSAGE = "Expected an object: a JSON object, or an XML element with child elements."


def post(url: str, body: bytes, content_type: str | None, **headers: str) -> requests.Response:
    return send_bytes("POST", url, body, content_type, **headers)


def xml_profile(inner: str, root: str = "CreateUserProfile", namespace: str = NS) -> bytes:
    return (
        f'<{root} xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="{namespace}">{inner}</{root}>'
    ).encode()


def model_state(response: requests.Response) -> dict:
    return response.json()["ModelState"]


# --- request media types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "sample"),
    [
        ("application/json", "create-profile.json"),
        ("text/json", "create-profile.json"),
        ("application/json-patch+json", "create-profile.json"),
        ("application/json; charset=utf-8", "create-profile.json"),
        ("application/xml", "create-profile.xml"),
        ("text/xml", "create-profile.xml"),
        ("text/xml; charset=UTF-8", "create-profile.xml"),
    ],
)
def test_documented_request_media_types_are_accepted(base_url, client_id, content_type, sample):
    response = post(f"{base_url}/{client_id}/Profile", fixture_bytes(sample), content_type)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/plain", "The request entity's media type 'text/plain' is not supported for this resource."),
        (
            "application/x-www-form-urlencoded",
            "The request entity's media type 'application/x-www-form-urlencoded' is not supported "
            "for this resource.",
        ),
        (
            None,
            "The request contains an entity body but no Content-Type header. The inferred media type "
            "'application/octet-stream' is not supported for this resource.",
        ),
        ("application/json; charset=latin-1", "The charset 'latin-1' is not supported; send UTF-8."),
    ],
)
def test_other_media_types_are_415_with_an_error_body(profile_url, served, client_id, content_type, message):
    response = post(profile_url, fixture_bytes("create-profile.json"), content_type)

    assert response.status_code == 415
    assert response.json() == {"Message": message}
    assert served.profiles(client_id) == []


def test_415_error_follows_accept(profile_url):
    response = post(profile_url, b"x", "text/plain", Accept=XML)

    assert response.status_code == 415
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert ET.fromstring(response.content).tag == "Error"


# --- response negotiation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "content_type", "accept", "expected"),
    [
        ("create-profile.json", JSON, None, JSON),
        ("create-profile.json", JSON, "*/*", JSON),
        ("create-profile.xml", XML, None, XML),
        ("create-profile.xml", "text/xml", "*/*", "text/xml"),
        ("create-profile.json", "application/json-patch+json", "*/*", JSON),
        ("create-profile.json", JSON, XML, XML),
        ("create-profile.xml", XML, JSON, JSON),
        ("create-profile.xml", XML, "text/json", "text/json"),
        ("create-profile.json", JSON, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", XML),
        ("create-profile.xml", XML, "application/json;q=0.5, text/xml;q=0.9", "text/xml"),
    ],
)
def test_response_format_follows_accept_else_the_request(profile_url, sample, content_type, accept, expected):
    headers = {"Accept": accept} if accept else {}
    response = post(profile_url, fixture_bytes(sample), content_type, **headers)

    assert response.status_code == 201
    assert response.headers["Content-Type"] == f"{expected}; charset=utf-8"
    if "xml" in expected:
        assert ET.fromstring(response.content).tag == f"{{{NS}}}UserProfile"
    else:
        assert response.json()["ProfileId"] > 0


def test_get_without_accept_answers_json(profile_url):
    created = post_json(profile_url, minimal_profile()).json()

    response = vendor.get(f"{profile_url}/{created['ProfileId']}", timeout=10)

    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == created


@pytest.mark.parametrize("accept", ["text/html", "application/pdf", "image/*"])
def test_unsatisfiable_accept_is_406_and_stores_nothing(profile_url, served, client_id, accept):
    response = post_json(profile_url, minimal_profile(), Accept=accept)

    assert response.status_code == 406
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert accept in response.json()["Message"]
    assert served.profiles(client_id) == []


def test_validation_errors_follow_accept(profile_url):
    response = post_json(profile_url, minimal_profile(IsActive="yes"), Accept="text/xml")

    error = ET.fromstring(response.content)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert error.findtext("Message") == "The request is invalid."
    assert error.findtext("ModelState/IsActive") == "Error converting value \"yes\" to type 'System.Boolean'."


# --- XML details ----------------------------------------------------------------------------


def test_xml_booleans_and_nil(profile_url):
    body = xml_profile(
        '<CustomerType i:nil="true" /><IsActive>0</IsActive><DefaultLocale></DefaultLocale>'
        "<RegistrationConfirmed> true </RegistrationConfirmed>"
    )

    response = post(profile_url, body, XML, Accept=JSON)

    assert response.status_code == 201, response.text
    assert warnings_of(response) == []  # XML's booleans are booleans: nothing is converted
    profile = response.json()
    assert profile["IsActive"] is False
    assert profile["RegistrationConfirmed"] is True
    assert profile["CustomerType"] == "Customer"
    assert profile["DefaultLocale"] == ""


def test_xml_boolean_must_be_a_boolean(profile_url):
    response = post(profile_url, xml_profile("<IsActive>yes</IsActive>"), XML, Accept=JSON)

    assert response.status_code == 400
    assert model_state(response) == {"IsActive": ["Error converting value \"yes\" to type 'System.Boolean'."]}


@pytest.mark.parametrize(
    ("inner", "path", "message"),
    [
        (
            "<Addresses>text</Addresses>",
            "Addresses",
            "Expected a collection: a JSON array, or XML entry elements.",
        ),
        ("<CustomerName>Ann</CustomerName>", "CustomerName", OBJECT_MESSAGE),
        (
            "<CustomerType><X>1</X></CustomerType>",
            "CustomerType",
            "Error converting value {} to type 'System.String'.",
        ),
    ],
)
def test_xml_types_are_enforced(profile_url, inner, path, message):
    response = post(profile_url, xml_profile(inner), XML, Accept=JSON)

    assert response.status_code == 400
    assert model_state(response) == {path: [message]}


@pytest.mark.parametrize(
    ("root", "namespace", "found"),
    [
        ("UserProfile", NS, f"Encountered element 'UserProfile' from namespace '{NS}'."),
        (
            "CreateUserProfile",
            "urn:other",
            "Encountered element 'CreateUserProfile' from namespace 'urn:other'.",
        ),
    ],
)
def test_xml_root_must_be_create_user_profile_in_the_vendor_namespace(profile_url, root, namespace, found):
    response = post(profile_url, xml_profile("", root, namespace), XML, Accept=JSON)

    assert response.status_code == 400
    assert model_state(response) == {
        "body": [f"Expecting element 'CreateUserProfile' from namespace '{NS}'. {found}"]
    }


def test_xml_unknown_elements_and_entries_are_ignored_with_warnings(profile_url):
    body = xml_profile(
        "<Emial>x</Emial><ProfileId>77</ProfileId>"
        "<Emails><EmailEntry><EmailAddress>a@example.com</EmailAddress><Typo>1</Typo></EmailEntry></Emails>"
        "<Addresses><AddressEntry><Address1>a</Address1></AddressEntry></Addresses>"
        '<Foreign xmlns="urn:other">1</Foreign>'
    )

    response = post(profile_url, body, XML, Accept=JSON)

    assert response.status_code == 201
    assert response.json()["Addresses"] == []
    assert response.json()["ProfileId"] != 77
    assert warnings_of(response) == [
        "ignored unknown field 'Emial'",
        "ignored read-only field 'ProfileId'",
        "ignored unknown field 'Emails[0].Typo'",
        "ignored unknown field 'Addresses.AddressEntry'",
        "ignored unknown field 'Foreign'",
    ]


# --- unknown and read-only JSON fields ------------------------------------------------------


def test_json_unknown_fields_are_ignored_with_a_warning_each(profile_url, served, client_id):
    body = minimal_profile(Emial="x", Addresses=[{"Address1": "a", "City": "c", "StateProvince": "GA",
                                                   "PostalCode": "1", "Cty": "x"}])  # fmt: skip

    response = post_json(profile_url, body)

    assert response.status_code == 201
    assert warnings_of(response) == [
        "ignored unknown field 'Emial'",
        "ignored unknown field 'Addresses[0].Cty'",
    ]
    assert "Emial" not in served.profiles(client_id)[0]


def test_json_property_names_are_matched_ignoring_case_as_json_net_does(profile_url, served, client_id):
    body = {
        "customerName": {"firstName": "Ann", "LASTNAME": "Example"},
        "emails": [{"emailAddress": "ann@example.com", "isdefault": "true"}],
        "CustomerType": "Business",
        "customertype": "Individual",  # the same property again: the later one wins
    }

    response = post_json(profile_url, body)

    profile = response.json()
    assert response.status_code == 201, response.text
    assert profile["CustomerName"]["FirstName"] == "Ann"
    assert profile["CustomerName"]["LastName"] == "Example"
    assert profile["Emails"][0]["EmailAddress"] == "ann@example.com"
    assert profile["Emails"][0]["IsDefault"] is True
    assert profile["CustomerType"] == "Individual"
    assert served.profiles(client_id)[0]["CustomerName"]["LastName"] == "Example"
    assert [warning for warning in warnings_of(response) if warning.startswith("read ")] == [
        "read 'customerName' as 'CustomerName' (Json.NET matches a property's name ignoring case)",
        "read 'CustomerName.firstName' as 'FirstName' (Json.NET matches a property's name ignoring case)",
        "read 'CustomerName.LASTNAME' as 'LastName' (Json.NET matches a property's name ignoring case)",
        "read 'emails' as 'Emails' (Json.NET matches a property's name ignoring case)",
        "read 'Emails[0].emailAddress' as 'EmailAddress' (Json.NET matches a property's name ignoring case)",
        "read 'Emails[0].isdefault' as 'IsDefault' (Json.NET matches a property's name ignoring case)",
        "read 'customertype' as 'CustomerType' (Json.NET matches a property's name ignoring case)",
    ]


def test_an_object_or_list_named_again_in_another_case_is_filled_in_as_json_net_does(profile_url):
    body = {
        "CustomerName": {"FirstName": "Ann"},
        "customerName": {"LastName": "Example"},
        "Emails": [{"EmailAddress": "a@example.com"}],
        "emails": [{"EmailAddress": "b@example.com"}],
        "profileId": 5,
    }

    response = post_json(profile_url, body)

    profile = response.json()
    assert response.status_code == 201, response.text
    assert (profile["CustomerName"]["FirstName"], profile["CustomerName"]["LastName"]) == ("Ann", "Example")
    assert [email["EmailAddress"] for email in profile["Emails"]] == ["a@example.com", "b@example.com"]
    assert profile["ProfileId"] != 5
    assert "ignored read-only field 'profileId'" in warnings_of(response)


def test_a_rule_broken_under_a_name_of_another_case_is_a_400_under_the_propertys_name(profile_url):
    response = post_json(profile_url, minimal_profile(customerType="x" * 101))

    assert response.status_code == 400
    assert list(model_state(response)) == ["CustomerType"]


def test_xml_element_names_stay_case_sensitive_as_data_contract_serializer_reads_them(profile_url):
    response = post(profile_url, xml_profile("<customerType>Business</customerType>"), XML, Accept=JSON)

    assert response.status_code == 201
    assert response.json()["CustomerType"] != "Business"
    assert "ignored unknown field 'customerType'" in warnings_of(response)


def test_read_only_fields_in_a_create_change_nothing(profile_url):
    body = minimal_profile(
        ProfileId=5,
        Edited={"CreateDate": "2000-01-01T00:00:00Z", "CreatedBy": "mallory"},
        Consents=[{"ConsentType": "x"}],
        ReasonCode="gone",
    )

    response = post_json(profile_url, body)

    profile = response.json()
    assert response.status_code == 201
    assert profile["ProfileId"] != 5
    assert profile["Edited"]["CreatedBy"] == "tester"
    assert profile["Consents"] == []
    assert "ReasonCode" not in profile
    assert warnings_of(response) == [
        f"ignored read-only field '{name}'" for name in ("ProfileId", "Edited", "Consents", "ReasonCode")
    ]


def test_warnings_are_capped():
    with Served({"MAX_WARNINGS": 2, "AUTH_MODE": "off"}) as served:
        body = minimal_profile(**{f"Unknown{index}": index for index in range(5)})

        response = post_json(f"{served.url}/acme/Profile", body)

    assert response.raw.headers.getlist("X-Sandbox-Warning") == [
        "ignored unknown field 'Unknown0'",
        "ignored unknown field 'Unknown1'",
        "and 3 more",
    ]


def test_a_long_warning_is_cut_in_the_header_and_in_the_journal():
    with Served({"MAX_WARNING_CHARS": 40, "AUTH_MODE": "off"}) as served:
        response = post_json(f"{served.url}/acme/Profile", minimal_profile(**{"k" * 200_000: 1}))
        [entry] = ControlClient(served.url).requests()

    cut = "ignored unknown field '" + "k" * 17 + "..."
    assert response.status_code == 201
    assert response.raw.headers.getlist("X-Sandbox-Warning") == [cut]
    assert entry["warnings"] == [cut]


# --- hostile and broken bodies --------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"&lol;") * 10)
        for level in range(1, 10)
    )
    + b"]>"
    + xml_profile("<CustomerType>&lol9;</CustomerType>")
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + xml_profile("<CustomerType>&x;</CustomerType>")
)


@pytest.mark.parametrize(
    ("body", "content_type", "message_start"),
    [
        (b'{"CustomerType": ', JSON, "The body is not valid JSON: Expecting value"),
        (b"{'single': 'quotes'}", JSON, "The body is not valid JSON: Expecting property name"),
        (b'{"CustomerType": NaN}', JSON, "The body is not valid JSON: NaN is not a JSON value"),
        (b'{"CustomerType": "\xff\xfe"}', JSON, "The body is not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, JSON, "The body is nested more than 32 levels deep."),
        (json.dumps({"Unknown": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}).encode(), JSON,
         "The body is nested more than 32 levels deep."),
        (b"", JSON, "A non-empty request body is required."),
        (b"   ", XML, "A non-empty request body is required."),
        (b"<CreateUserProfile>", XML, "The body is not well-formed XML"),
        (b"not xml at all", XML, "The body is not well-formed XML"),
        (xml_profile("<CustomerType>?</CustomerType>").replace(b"?", b"\xff"), XML, "The body is not well-formed XML"),
        (b"<a>" * 10_000 + b"</a>" * 10_000, XML, "The body is nested more than 32 levels deep."),
        (BILLION_LAUGHS, XML, "DTDs and entity declarations are not allowed."),
        (EXTERNAL_ENTITY, XML, "DTDs and entity declarations are not allowed."),
        (b'<!DOCTYPE CreateUserProfile SYSTEM "http://example.invalid/x.dtd">' + xml_profile(""), XML,
         "DTDs and entity declarations are not allowed."),
    ],
    ids=["truncated-json", "not-json", "nan", "invalid-utf8-json", "deep-json", "deep-unknown-json",
         "empty", "blank-xml", "truncated-xml", "not-xml", "invalid-utf8-xml", "deep-xml",
         "billion-laughs", "external-entity", "external-dtd"],
)  # fmt: skip
def test_bad_bodies_are_400_at_once_and_store_nothing(
    profile_url, served, client_id, body, content_type, message_start
):
    response = post(profile_url, body, content_type, Accept=JSON)

    assert response.status_code == 400
    [(key, [message])] = model_state(response).items()
    assert key == "body"
    assert message.startswith(message_start), message
    assert "sys." not in message and "(name=" not in message  # no Python internals
    assert served.profiles(client_id) == []


def test_body_over_the_limit_is_413():
    with Served({"MAX_CONTENT_LENGTH": 2048}) as served:
        small = post_json(f"{served.url}/acme/Profile", minimal_profile(CustomerType="x" * 100))
        large = post_json(f"{served.url}/acme/Profile", minimal_profile(CustomFields=[{"Name": "x" * 4096}]))
        stored = served.profiles("acme")

    assert small.status_code == 201
    assert large.status_code == 413
    assert large.json() == {"Message": "The request body is larger than the limit of 2048 bytes."}
    assert len(stored) == 1


def chunked(body: bytes, piece: int = 1000) -> Iterator[bytes]:
    """``body`` in pieces: ``requests`` sends a generator chunked, with no Content-Length."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


def test_a_chunked_body_over_the_limit_is_413_never_cut_and_parsed():
    valid = json.dumps(minimal_profile()).encode()
    with Served({"MAX_CONTENT_LENGTH": 2048}) as served:
        at_the_limit = send_bytes("POST", f"{served.url}/acme/Profile", chunked(valid.ljust(2048)), JSON)
        past_it = send_bytes("POST", f"{served.url}/acme/Profile", chunked(valid.ljust(2049)), JSON)
        stored = served.profiles("acme")

    assert at_the_limit.status_code == 201
    assert past_it.status_code == 413
    assert past_it.json() == {"Message": "The request body is larger than the limit of 2048 bytes."}
    assert len(stored) == 1


def test_default_body_limit_is_one_mebibyte(profile_url):
    padding = "x" * (1024 * 1024)

    response = post_json(profile_url, minimal_profile(CustomFields=[{"Name": "pad", "Value": padding}]))

    assert response.status_code == 413


def test_xml_sample_read_as_json_is_a_clear_400(profile_url):
    response = post(profile_url, fixture_bytes("create-profile.xml"), JSON)

    assert response.status_code == 400
    assert model_state(response)["body"][0].startswith("The body is not valid JSON")


def test_json_sample_fixture_round_trips_through_xml(profile_url):
    created = post_json(profile_url, fixture_json("create-profile.json"), Accept=XML)

    document = ET.fromstring(created.content)
    assert document.findtext(f"{{{NS}}}CustomerType") == "sample string 3"


# --- no input produces a 500 ----------------------------------------------------------------

PROFILE_KEYS = sorted(
    {
        *schemas.CreateUserProfile._declared_fields,
        *schemas.CreateAddressEntry._declared_fields,
        *schemas.EmailEntry._declared_fields,
        *schemas.CustomerName._declared_fields,
        *schemas.AlternateIdEntry._declared_fields,
        "ProfileId",
        "Unknown",
    }
)
ENTRY_NAMES = ["CreateAddressEntry", "EmailEntry", "AlternateIdEntry", "Tag", "Other"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(PROFILE_KEYS) | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)
xml_elements = st.recursive(
    st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=10).map(escape),
    lambda children: st.lists(
        st.tuples(st.sampled_from(PROFILE_KEYS + ENTRY_NAMES), children).map(
            lambda pair: f"<{pair[0]}>{pair[1]}</{pair[0]}>"
        ),
        max_size=4,
    ).map("".join),
    max_leaves=30,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.dictionaries(st.sampled_from(PROFILE_KEYS), json_values, max_size=6) | json_values)
def test_no_json_body_gets_a_500(profile_url, body):
    response = post_json(profile_url, body)

    assert response.status_code in (201, 400), response.text
    assert response.json()


@FUZZ
@given(inner=xml_elements)
def test_no_xml_body_gets_a_500(profile_url, inner):
    response = post(profile_url, xml_profile(inner), XML)

    assert response.status_code in (201, 400), response.text
    assert ET.fromstring(response.content).tag in ("Error", f"{{{NS}}}UserProfile")


def test_warnings_escape_what_a_header_cannot_carry(profile_url):
    response = post_json(profile_url, minimal_profile(**{"Näme\r\nX-Injected: 1": 1}))

    assert response.status_code == 201
    assert warnings_of(response) == ["ignored unknown field 'N\\xe4me\\r\\nX-Injected: 1'"]
    assert "X-Injected" not in response.headers


def test_a_number_too_long_to_convert_is_a_400(profile_url):
    response = send_bytes("POST", profile_url, b'{"IsActive": ' + b"1" * 5000 + b"}", JSON)

    assert response.status_code == 400
    assert model_state(response)["body"] == ["The body holds a number of more than 4300 digits."]


def test_an_unknown_xml_encoding_is_a_400(profile_url):
    body = b'<?xml version="1.0" encoding="foo"?>' + xml_profile("")

    response = post(profile_url, body, XML, Accept=JSON)

    assert response.status_code == 400
    assert model_state(response)["body"][0].startswith("The body is not well-formed XML")


def test_a_root_without_namespace_is_named_whole(profile_url):
    response = post(profile_url, b"<foo/>", XML, Accept=JSON)

    assert model_state(response)["body"] == [
        f"Expecting element 'CreateUserProfile' from namespace '{NS}'. Encountered element 'foo' from namespace ''."
    ]


def test_xml_answers_stay_well_formed_whatever_json_stored(profile_url):
    created = post_json(profile_url, minimal_profile(CustomerName={"FirstName": "A\u0001B"})).json()

    response = vendor.get(f"{profile_url}/{created['ProfileId']}", headers={"Accept": XML}, timeout=10)

    assert ET.fromstring(response.content).find(f"{{{NS}}}CustomerName/{{{NS}}}FirstName").text == "A\ufffdB"


def test_an_answer_lists_at_most_the_configured_model_errors():
    with Served({"MAX_MODEL_ERRORS": 3}) as served:
        response = post_json(f"{served.url}/acme/Profile", {"Addresses": [{}] * 10})

    model_state = response.json()["ModelState"]
    assert response.status_code == 400
    assert len(model_state) == 4
    assert model_state["body"] == [
        "The maximum number of allowed model errors (3) has been reached; the rest of the body was not checked."
    ]


class Counted(list):
    """A list that counts the entries read from it."""

    read = 0

    def __iter__(self):
        for entry in super().__iter__():
            self.read += 1
            yield entry


@pytest.mark.parametrize("limit", [1, 200])
def test_validation_stops_reading_a_collection_at_the_error_limit(limit):
    phones = Counted([{"PhoneNumber": 1}] * 100_000)
    token, entries = schemas.error_limit.set(limit), schemas.entry_limit.set(len(phones))
    try:
        with pytest.raises(BadRequest) as raised:
            schemas.load(schemas.CreateUserProfile(), {"PhoneNumbers": phones})
    finally:
        schemas.error_limit.reset(token)
        schemas.entry_limit.reset(entries)

    assert raised.value.stopped
    assert phones.read == limit  # one error each: a number that is not a string
    assert len(raised.value.model_state) == limit


def test_a_state_import_stops_at_the_error_limit():
    with Served({"MAX_MODEL_ERRORS": 5}) as served:
        response = requests.post(
            f"{served.url}/_sandbox/state", json={"clients": {"acme": [{"Emails": 1}] * 1000}}, timeout=10
        )

    model_state = response.json()["ModelState"]
    assert response.status_code == 400
    assert list(model_state)[:5] == [f"clients.acme[{index}].Emails" for index in range(5)]
    assert model_state["body"][0].endswith("the rest of the body was not checked.")


def test_a_collection_of_more_entries_than_the_limit_is_400_and_stores_nothing():
    with Served({"MAX_ENTRIES": 3}) as served:
        at_the_limit = post_json(f"{served.url}/acme/Profile", {"PhoneNumbers": [{}] * 3})
        past_it = post_json(f"{served.url}/acme/Profile", {"PhoneNumbers": [{}] * 4})
        stored = served.profiles("acme")

    assert at_the_limit.status_code == 201
    assert past_it.status_code == 400
    assert past_it.json()["ModelState"] == {
        "PhoneNumbers": [
            "The sandbox keeps at most 3 entries in one collection (SANDBOX_MAX_ENTRIES); this one has 4."
        ]
    }
    assert len(stored) == 1


def _half_closed(port: int, head: str, body: bytes) -> bytes:
    """What the server answers to ``head`` and ``body``, sent and then the sending side closed."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length: 100", b'{"CustomerName":{"FirstName":"cut"}}'),
        ("Transfer-Encoding: chunked", b'24\r\n{"CustomerName":{"FirstName":"cut"}}\r\n'),  # no last chunk
    ],
    ids=["shorter-than-declared", "chunked-without-its-end"],
)
def test_a_body_cut_short_is_400_and_stores_nothing(framing, body):
    head = "POST /acme/Profile HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\n"
    head += f"Authorization: {auth()['Authorization']}\r\n{framing}\r\n"
    with Served() as served:
        answer = _half_closed(served.port, head, body)
        stored = served.profiles("acme")

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "Message": "The request is invalid.",
        "ModelState": {"body": ["The body ended before its declared length."]},
    }
    assert stored == []
