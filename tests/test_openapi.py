"""The OpenAPI document at /_sandbox/openapi.json, over real HTTP: valid, complete, and true to the
sandbox's routes, rules and responses."""

from __future__ import annotations

import re

import pytest
import requests
from helpers import fixture_json, post_json
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

METHODS = {"get", "put", "post", "delete", "patch"}
VENDOR_TYPES = {"application/json", "text/json", "application/xml", "text/xml"}


@pytest.fixture(scope="module")
def spec(served):
    return requests.get(f"{served.url}/_sandbox/openapi.json", timeout=10).json()


def resolve(spec: dict, node: dict) -> dict:
    """``node`` with its ``$ref`` chain followed."""
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = spec["components"][kind][name]
    return node


def parameters(spec: dict, path: str, method: str) -> dict[str, dict]:
    """The parameters of an operation (its path's included), by name."""
    item = spec["paths"][path]
    found = [resolve(spec, p) for p in [*item.get("parameters", []), *item[method].get("parameters", [])]]
    return {parameter["name"]: parameter for parameter in found}


def json_schema(spec: dict, path: str, method: str, status: str | None = None) -> dict:
    """The application/json schema of an operation's request body, or of its response ``status``."""
    operation = spec["paths"][path][method]
    holder = operation["requestBody"] if status is None else operation["responses"][status]
    return resolve(spec, holder["content"]["application/json"]["schema"])


def conforms(spec: dict, schema: dict, instance: object) -> list[str]:
    """Every way ``instance`` breaks ``schema`` (an OpenAPI 3.0 schema of the document)."""
    validator = OAS30Validator({"allOf": [schema], "components": spec["components"]})
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(instance)]


def test_served_as_json_and_valid_openapi_3(base_url):
    response = requests.get(f"{base_url}/_sandbox/openapi.json", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.0.")
    validate(document)  # raises on any violation of the OpenAPI 3.0 schema or its rules


def test_every_route_is_a_path_with_its_methods(spec, served):
    routed = {
        (re.sub(r"<[^>]+>", "{}", rule.rule), method.lower())
        for rule in served.app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (re.sub(r"\{[^}]+\}", "{}", path), method)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }

    assert documented == routed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "{prefix}/{{clientId}}/Profile"),
        ("get", "{prefix}/{{clientId}}/Profile"),
        ("put", "{prefix}/{{clientId}}/Profile"),
        ("patch", "{prefix}/{{clientId}}/Profile"),
        (
            "get",
            "{prefix}/{{clientId}}/Profile/AlternateIdType/{{alternateIdType}}/AlternateId/{{alternateId}}",
        ),
        (
            "patch",
            "{prefix}/{{clientId}}/Profile/AlternateIdType/{{alternateIdType}}/AlternateId/{{alternateId}}",
        ),
        ("get", "{prefix}/{{clientId}}/Profile/{{profileId}}"),
        ("put", "{prefix}/{{clientId}}/Profile/{{profileId}}"),
        ("post", "{prefix}/{{clientId}}/Profile/{{profileId}}"),
        ("patch", "{prefix}/{{clientId}}/Profile/{{profileId}}"),
        ("delete", "{prefix}/{{clientId}}/Profile/{{profileId}}"),
        ("post", "{prefix}/{{clientId}}/Profile/{{profileId}}/Activate"),
        ("post", "{prefix}/{{clientId}}/Profile/{{profileId}}/Deactivate"),
        ("post", "{prefix}/{{clientId}}/Consents/{{profileId}}"),
        ("get", "{prefix}/{{clientId}}/ConsentStatus"),
    ],
)
@pytest.mark.parametrize("prefix", ["", "/Profiles"])
def test_vendor_paths_under_both_roots_with_the_documented_names(spec, method, path, prefix):
    path = path.format(prefix=prefix)
    operation = spec["paths"][path][method]

    names = set(re.findall(r"\{(\w+)\}", path))
    assert {name for name, p in parameters(spec, path, method).items() if p["in"] == "path"} == names
    assert operation["security"] == [{"PNAUTHINFO3": []}, {"bearer": []}]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/_sandbox/health"),
        ("post", "/_sandbox/reset"),
        ("post", "/_sandbox/faults"),
        ("get", "/_sandbox/faults"),
        ("delete", "/_sandbox/faults"),
        ("get", "/_sandbox/faults/{ruleId}"),
        ("delete", "/_sandbox/faults/{ruleId}"),
        ("get", "/_sandbox/requests"),
        ("get", "/_sandbox/requests/count"),
        ("delete", "/_sandbox/requests"),
        ("get", "/_sandbox/state"),
        ("post", "/_sandbox/state"),
        ("get", "/_sandbox/clock"),
        ("put", "/_sandbox/clock"),
        ("post", "/_sandbox/clock/advance"),
        ("delete", "/_sandbox/clock"),
        ("get", "/_sandbox/openapi.json"),
        ("post", "/oauth/token"),
    ],
)
def test_control_and_oauth_paths_answer_a_documented_success(spec, method, path):
    responses = spec["paths"][path][method]["responses"]

    assert {"200", "201", "204"} & set(responses)


@pytest.mark.parametrize(
    ("collection", "field", "min_length", "max_length", "required"),
    [
        (None, "CustomerType", None, 100, False),
        (None, "DefaultLocale", None, 15, False),
        ("Addresses", "Address1", 1, 125, True),
        ("Addresses", "Address2", None, 125, False),
        ("Addresses", "City", 1, 50, True),
        ("Addresses", "StateProvince", 2, 50, True),
        ("Addresses", "PostalCode", 1, 15, True),
        ("Addresses", "CountryCode_Numeric", None, 3, False),
        ("Addresses", "CountryCode_Alpha2", None, 2, False),
        ("Addresses", "CountryCode_Alpha3", None, 3, False),
        ("Addresses", "AddressType", None, 100, False),
        ("Emails", "EmailAddress", 1, 256, True),
        ("Emails", "EmailAddressType", None, 100, False),
    ],
)
@pytest.mark.parametrize("prefix", ["", "/Profiles"])
def test_create_body_carries_the_documented_limits(
    spec, prefix, collection, field, min_length, max_length, required
):
    create = json_schema(spec, f"{prefix}/{{clientId}}/Profile", "post")
    shape = resolve(spec, create["properties"][collection]["items"]) if collection else create
    rule = shape["properties"][field]

    assert rule["type"] == "string"
    assert (rule.get("minLength"), rule["maxLength"]) == (min_length, max_length)
    assert (field in shape.get("required", [])) is required


def test_create_reads_json_and_xml_and_types_its_flags(spec):
    operation = spec["paths"]["/{clientId}/Profile"]["post"]
    create = json_schema(spec, "/{clientId}/Profile", "post")

    assert set(operation["requestBody"]["content"]) == VENDOR_TYPES
    assert {create["properties"][flag]["type"] for flag in ("IsActive", "PreservePreferences")} == {"boolean"}
    assert (
        resolve(spec, create["properties"]["Emails"]["items"])["properties"]["IsDefault"]["type"] == "boolean"
    )
    assert set(operation["responses"]) == {
        "201",
        "200",
        "400",
        "401",
        "403",
        "404",
        "406",
        "409",
        "413",
        "415",
    }
    assert "Location" in operation["responses"]["201"]["headers"]


def test_patch_reads_json_patch_only(spec):
    body = spec["paths"]["/{clientId}/Profile/{profileId}"]["patch"]["requestBody"]
    document = resolve(spec, body["content"]["application/json-patch+json"]["schema"])
    bare, wrapped = (resolve(spec, choice) for choice in document["oneOf"])
    operation = resolve(spec, bare["items"])

    assert not {"application/xml", "text/xml"} & set(body["content"])
    assert operation["properties"]["op"]["enum"] == ["add", "replace", "remove", "test"]
    assert resolve(spec, wrapped["properties"]["Operations"]["items"]) == operation


def test_consent_status_is_an_integer_enum_of_the_four_statuses(spec):
    consents = json_schema(spec, "/{clientId}/Consents/{profileId}", "post")
    consent = resolve(spec, consents["properties"]["Consents"]["items"])
    profile = json_schema(spec, "/{clientId}/Profile/{profileId}", "get", "200")
    recorded = resolve(spec, profile["properties"]["Consents"]["items"])

    for status in (consent["properties"]["ConsentStatus"], recorded["properties"]["ConsentStatus"]):
        assert (status["type"], status["enum"]) == ("integer", [1, 2, 3, 4])
    assert set(consent["required"]) == {"ConsentType", "ConsentVersion", "Locale", "ConsentStatus"}
    assert consent["properties"]["ConsentDate"]["format"] == "date-time"


def test_user_profile_has_its_id_and_edit_record(spec):
    profile = json_schema(spec, "/{clientId}/Profile/{profileId}", "get", "200")
    edited = resolve(spec, profile["properties"]["Edited"])

    assert profile["properties"]["ProfileId"]["type"] == "integer"
    assert {"CreateDate", "CreatedBy", "ModifiedDate", "ModifiedBy"} <= set(edited["properties"])


def test_errors_have_the_aspnet_shape(spec):
    error = json_schema(spec, "/{clientId}/Profile", "post", "400")

    assert error["required"] == ["Message"]
    assert error["properties"]["ModelState"]["additionalProperties"]["items"]["type"] == "string"
    assert "Allow" in spec["components"]["responses"]["MethodNotAllowed"]["headers"]


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        (
            "/{clientId}/Profile",
            "get",
            {
                "alternateIdType",
                "alternateId",
                "emailAddress",
                "phoneNumber",
                "lastName",
                "firstName",
                "middleName",
                "implied",
                "includeConsentHistory",
            },
        ),
        ("/{clientId}/Profile/{profileId}", "get", {"implied", "includeConsentHistory"}),
        ("/{clientId}/Profile/{profileId}", "delete", {"reasonCode"}),
        ("/_sandbox/requests", "get", {"clientId", "method", "path", "status", "since", "until", "limit"}),
        (
            "/_sandbox/requests/count",
            "get",
            {"clientId", "method", "path", "status", "since", "until", "limit"},
        ),
    ],
)
def test_documented_query_parameters(spec, path, method, expected):
    query = {name for name, p in parameters(spec, path, method).items() if p["in"] == "query"}

    assert expected <= query


def test_query_parameter_types(spec):
    search = parameters(spec, "/{clientId}/Profile", "get")
    delete = parameters(spec, "/{clientId}/Profile/{profileId}", "delete")
    journal = parameters(spec, "/_sandbox/requests", "get")

    assert search["includeConsentHistory"]["schema"]["type"] == "boolean"
    assert "maxLength" not in delete["reasonCode"]["schema"]
    assert journal["since"]["schema"]["format"] == "date-time"
    assert journal["limit"]["schema"] == {"type": "integer", "minimum": 1}


def test_fault_rule_lists_the_connection_faults(spec):
    rule = json_schema(spec, "/_sandbox/faults", "post")
    fault = resolve(spec, rule["properties"]["fault"])

    assert fault["properties"]["type"]["enum"] == [
        "CONNECTION_RESET_BY_PEER",
        "EMPTY_RESPONSE",
        "RANDOM_DATA_THEN_CLOSE",
        "MALFORMED_RESPONSE_CHUNK",
        "TRUNCATED_RESPONSE",
        "DRIBBLE",
        "HANG",
    ]
    assert rule["properties"]["when"]["enum"] == ["before", "after"]
    assert rule["additionalProperties"] is False


def test_security_schemes(spec):
    schemes = spec["components"]["securitySchemes"]

    assert schemes["PNAUTHINFO3"] == {
        **schemes["PNAUTHINFO3"],
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    assert spec["paths"]["/_sandbox/health"]["get"]["security"] == []


# --- real answers match the document ----------------------------------------------------------


def test_a_created_profile_matches_the_documented_201(spec, profile_url, control):
    response = post_json(profile_url, fixture_json("create-profile.json"))

    assert response.status_code == 201
    assert conforms(spec, json_schema(spec, "/{clientId}/Profile", "post", "201"), response.json()) == []


def test_a_profile_with_consents_matches_the_documented_200(spec, profile_url, control):
    created = post_json(profile_url, fixture_json("create-profile.json")).json()
    consent = {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 1}
    url = profile_url.replace("/Profile", f"/Consents/{created['ProfileId']}")

    response = post_json(url, {"Consents": [consent]})

    assert response.status_code == 200
    assert (
        conforms(spec, json_schema(spec, "/{clientId}/Consents/{profileId}", "post", "200"), response.json())
        == []
    )


def test_a_rejected_create_matches_the_documented_400(spec, profile_url, control):
    response = post_json(profile_url, fixture_json("vendor/create-profile-request.json"))

    assert response.status_code == 400
    assert conforms(spec, json_schema(spec, "/{clientId}/Profile", "post", "400"), response.json()) == []


def test_a_fault_rule_report_matches_the_documented_201(spec, control, client_id):
    rule = control.add_fault(match={"clientId": client_id}, fault={"type": "HANG", "duration": 10}, ttl=60000)

    assert conforms(spec, json_schema(spec, "/_sandbox/faults", "post", "201"), rule) == []


def test_a_document_that_breaks_the_documented_limits_is_refused_by_both(spec, profile_url, control):
    body = {
        "Addresses": [{"Address1": "1 Main St", "City": "x" * 51, "StateProvince": "G", "PostalCode": "1"}]
    }

    response = post_json(profile_url, body)
    broken = conforms(spec, json_schema(spec, "/{clientId}/Profile", "post"), body)

    assert response.status_code == 400
    assert set(response.json()["ModelState"]) == {"Addresses[0].City", "Addresses[0].StateProvince"}
    assert {line.split(":")[0] for line in broken} == {
        "['Addresses', 0, 'City']",
        "['Addresses', 0, 'StateProvince']",
    }
