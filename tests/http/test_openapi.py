"""The OpenAPI document at /_sandbox/openapi.json, over real HTTP: valid, complete, and true to the
sandbox's routes, rules and responses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
import requests
from helpers import Served, fixture_json, minimal_profile, patch, post_json, vendor
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
        ("Addresses", "StateProvince", 1, 50, True),  # 2 UTF-16 units: one astral character
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
        "408",
        "409",
        "413",
        "414",
        "415",
        "431",
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
                "alternateIdPair",
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


# --- the rules the server enforces: the document says them, and the server agrees ----------------


def accepts(spec: dict, schema: dict, instance: object) -> bool:
    return conforms(spec, schema, instance) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_optional_alternate_id_pair_is_one_object_given_whole(spec, method):
    found = parameters(spec, "/{clientId}/Profile", method)
    pair = found["alternateIdPair"]

    assert not {"alternateIdType", "alternateId"} & set(found)
    assert (pair["in"], pair["style"], pair["explode"], pair["required"]) == ("query", "form", True, False)
    assert pair["schema"]["required"] == ["alternateIdType", "alternateId"]
    assert {member["minLength"] for member in pair["schema"]["properties"].values()} == {1}


@pytest.mark.parametrize(
    "query",
    [
        "alternateIdType=crm",
        "alternateId=7",
        "alternateIdType=&alternateId=7",
        "alternateIdType=crm&alternateId=7",
    ],
)
def test_the_server_refuses_what_the_pair_refuses(spec, profile_url, query):
    pair = parameters(spec, "/{clientId}/Profile", "get")["alternateIdPair"]["schema"]

    response = vendor.get(f"{profile_url}?{query}", timeout=10)

    assert accepts(spec, pair, dict(parse_qsl(query, keep_blank_values=True))) is (
        response.status_code != 400
    )


def test_a_required_query_parameter_is_never_empty(spec, profile_url):
    required = [
        (path, method, parameter)
        for path, item in spec["paths"].items()
        for method in METHODS & set(item)
        for parameter in parameters(spec, path, method).values()
        if parameter["in"] == "query" and parameter["required"]
    ]

    assert {p["name"] for _, _, p in required} >= {"alternateIdType", "alternateId", "city", "groupType"}
    assert all(parameter["schema"]["minLength"] == 1 for _, _, parameter in required)
    assert vendor.get(f"{profile_url}/Address?city=&stateProvince=ON", timeout=10).status_code == 400


@pytest.mark.parametrize(
    ("operation", "accepted"),
    [
        ({"op": "replace", "path": "/CustomerType", "value": "Prospect"}, True),
        ({"op": "remove", "path": "/CustomerType"}, True),
        ({"op": "replace", "path": "CustomerType", "value": "Prospect"}, False),
        ({"op": "replace", "path": "", "value": {}}, False),
        ({"op": "add", "path": "/", "value": {}}, False),
        ({"op": "add", "path": "/CustomerType"}, False),
        ({"op": "test", "path": "/CustomerType"}, False),
    ],
)
def test_a_patch_path_is_a_json_pointer_and_a_value_comes_with_add_replace_and_test(
    spec, profile_url, control, operation, accepted
):
    created = post_json(profile_url, minimal_profile()).json()
    schema = resolve(spec, {"$ref": "#/components/schemas/PatchOperation"})

    response = patch(f"{profile_url}/{created['ProfileId']}", [operation])

    assert (accepts(spec, schema, operation), response.status_code == 200) == (accepted, accepted)


@pytest.mark.parametrize(
    ("scope", "accepted"),
    [("acme/ann", True), ("acme/ann/x", True), ("/ann", False), ("acme/", False), ("acme", False)],
)
def test_an_oauth_scope_is_client_id_slash_user_id(spec, base_url, scope, accepted):
    content = spec["paths"]["/oauth/token"]["post"]["requestBody"]["content"]
    schema = resolve(spec, content["application/x-www-form-urlencoded"]["schema"])
    form = {"grant_type": "client_credentials", "scope": scope, "client_id": "app", "client_secret": "s"}

    response = requests.post(f"{base_url}/oauth/token", data=form, timeout=10)

    assert (accepts(spec, schema, form), response.status_code == 200) == (accepted, accepted)


@pytest.mark.parametrize(
    ("time", "accepted"),
    [
        ("1971-01-01T00:00:00Z", True),
        ("8998-12-31T23:59:59-23:59", True),
        ("8999-12-31T23:59:59-12:00", False),
        ("1969-12-31T23:59:59Z", False),
        ("9000-01-01T00:00:01Z", False),
        ("9999-01-01T00:00:00Z", False),
    ],
)
def test_the_clock_takes_the_times_of_its_range(spec, time, accepted):
    schema = json_schema(spec, "/_sandbox/clock", "put")

    with Served() as served:  # the shared server's clock stays as it is
        response = requests.put(f"{served.url}/_sandbox/clock", json={"time": time}, timeout=10)

    assert (accepts(spec, schema, {"time": time}), response.status_code == 200) == (accepted, accepted)
    assert (
        "1970-01-01T00:00:00.000Z to 9000-01-01T00:00:00.000Z" in schema["properties"]["time"]["description"]
    )


def test_the_clock_advances_at_most_its_whole_range(spec):
    seconds = json_schema(spec, "/_sandbox/clock/advance", "post")["properties"]["seconds"]

    assert (
        seconds["maximum"]
        == (datetime(9000, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    )


@pytest.mark.parametrize(
    ("rule", "accepted"),
    [
        ({}, False),
        ({"respond": {"status": 503}}, True),
        ({"respond": {"status": 503}, "fault": {"type": "HANG", "duration": 1}}, False),
        ({"respond": {"status": 503}, "ttl": 1000, "expiresAt": "2999-01-01T00:00:00Z"}, False),
        ({"when": "before", "fault": {"type": "DRIBBLE", "duration": 1}}, False),
        ({"when": "after", "fault": {"type": "DRIBBLE", "duration": 1}}, True),
        ({"delay": {}}, False),
        ({"delay": {"fixed": 1, "uniform": {"lower": 1, "upper": 2}}}, False),
        ({"delay": {"fixed": 10_001}}, False),
        ({"delay": {"uniform": {"lower": 1, "upper": 10_000}}}, True),
    ],
)
def test_a_fault_rule_is_refused_by_both_or_neither(spec, base_url, control, client_id, rule, accepted):
    body = {"match": {"clientId": client_id}, **rule}  # scoped to this test's clientId, reset after it

    response = requests.post(f"{base_url}/_sandbox/faults", json=body, timeout=10)

    assert (accepts(spec, json_schema(spec, "/_sandbox/faults", "post"), body), response.status_code) == (
        accepted,
        201 if accepted else 400,
    )


def test_a_reset_takes_a_seed_only_server_wide(spec, base_url):
    schema = json_schema(spec, "/_sandbox/reset", "post")

    refused = requests.post(f"{base_url}/_sandbox/reset", json={"clientId": "c", "seed": 1}, timeout=10)

    assert refused.status_code == 400
    assert not accepts(spec, schema, {"clientId": "c", "seed": 1})
    assert accepts(spec, schema, {"seed": 1}) and accepts(spec, schema, {"clientId": "c"})


def test_an_alternate_id_pair_twice_in_one_profile_is_kept_once_as_described(spec, profile_url):
    create = json_schema(spec, "/{clientId}/Profile", "post")
    twice = [{"AlternateIdType": "crm", "AlternateId": "7"}, {"AlternateIdType": "CRM", "AlternateId": "7"}]

    response = post_json(profile_url, minimal_profile(AlternateIds=twice))

    assert (response.status_code, response.json()["AlternateIds"]) == (201, twice[:1])
    assert "repeats (case ignored) is kept once" in create["properties"]["AlternateIds"]["description"]


# --- what the HTTP server answers itself ------------------------------------------------------


def test_every_operation_may_get_the_http_servers_own_414_and_431_and_with_a_body_408(spec):
    shared = spec["components"]["responses"]

    for path, item in spec["paths"].items():
        for method in METHODS & set(item):
            responses = item[method]["responses"]
            assert responses["414"] == {"$ref": "#/components/responses/URITooLong"}, (method, path)
            assert responses["431"] == {"$ref": "#/components/responses/RequestHeaderFieldsTooLarge"}
            late = (
                {"$ref": "#/components/responses/RequestTimeout"} if "requestBody" in item[method] else None
            )
            assert responses.get("408") == late, (method, path)
    for name in ("URITooLong", "RequestHeaderFieldsTooLarge"):
        assert set(shared[name]["content"]) == {"text/html"}
    assert shared["RequestTimeout"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
    }


def test_the_http_server_answers_a_long_request_line_414_and_too_many_headers_431(base_url):
    long = requests.get(f"{base_url}/_sandbox/health?q={'a' * 70_000}", timeout=10)
    many = requests.get(
        f"{base_url}/_sandbox/health", headers={f"X-{n}": "1" for n in range(120)}, timeout=10
    )

    assert (long.status_code, many.status_code) == (414, 431)
    assert {long.headers["Content-Type"].split(";")[0], many.headers["Content-Type"].split(";")[0]} == {
        "text/html"
    }


# --- links: from what an operation creates to the operations that address it -----------------


def operations_by_id(spec: dict) -> dict[str, tuple[str, str]]:
    return {
        item[method]["operationId"]: (path, method)
        for path, item in spec["paths"].items()
        for method in METHODS & set(item)
    }


def test_every_link_names_an_operation_and_its_parameters(spec):
    by_id = operations_by_id(spec)
    links = [
        link
        for item in spec["paths"].values()
        for method in METHODS & set(item)
        for response in item[method]["responses"].values()
        for link in response.get("links", {}).values()
    ]

    assert len(links) > 30
    for link in links:
        path, method = by_id[link["operationId"]]
        named = {(p["in"], name) for name, p in parameters(spec, path, method).items()}
        assert {tuple(key.split(".", 1)) for key in link["parameters"]} <= named, link


def test_create_profile_links_to_what_its_ids_address(spec):
    links = spec["paths"]["/{clientId}/Profile"]["post"]["responses"]["201"]["links"]
    prefixed = spec["paths"]["/Profiles/{clientId}/Profile"]["post"]["responses"]["201"]["links"]
    faults = spec["paths"]["/_sandbox/faults"]["post"]["responses"]["201"]["links"]

    assert links["get_profile"] == {
        "operationId": "api.get_profile",
        "parameters": {
            "path.clientId": "$request.path.clientId",
            "path.profileId": "$response.body#/ProfileId",
        },
    }
    assert {
        "replace_profile",
        "merge_profile",
        "patch_profile",
        "delete_profile",
        "activate_profile",
        "deactivate_profile",
        "add_consents",
        "archive_preferences",
        "consent_history",
        "preference_history",
        "consent_filters",
        "get_by_alternate_id",
        "patch_by_alternate_id",
        "upsert_preferences",
        "replace_by_alternate_id",
    } <= set(links)
    assert spec["paths"]["/{clientId}/Profile"]["post"]["responses"]["200"]["links"] == links
    assert prefixed["get_profile"]["operationId"] == "prefixed_api.get_profile"
    assert faults == {
        name: {"operationId": f"control.{name}", "parameters": {"path.ruleId": "$response.body#/id"}}
        for name in ("get_fault", "delete_fault")
    }


def evaluate(expression: str, request_path: dict, body: dict) -> str:
    """An OpenAPI runtime expression of the two kinds the document's links use."""
    if expression.startswith("$request.path."):
        return request_path[expression.removeprefix("$request.path.")]
    node: object = body
    for step in expression.removeprefix("$response.body#/").split("/"):
        node = node[int(step)] if isinstance(node, list) else node[step]  # type: ignore[index]
    return str(node)


def test_following_create_profiles_links_reaches_the_profile(spec, base_url, client_id, control):
    links = spec["paths"]["/{clientId}/Profile"]["post"]["responses"]["201"]["links"]
    sent = minimal_profile(AlternateIds=[{"AlternateIdType": "crm", "AlternateId": "7"}])
    created = post_json(f"{base_url}/{client_id}/Profile", sent).json()
    by_id = operations_by_id(spec)
    reads = {name: link for name, link in links.items() if by_id[link["operationId"]][1] == "get"}

    statuses = {}
    for name, link in reads.items():
        path, _ = by_id[link["operationId"]]
        values = {
            key: evaluate(value, {"clientId": client_id}, created)
            for key, value in link["parameters"].items()
        }
        url = path.format(
            **{key.split(".", 1)[1]: value for key, value in values.items() if key.startswith("path.")}
        )
        query = {key.split(".", 1)[1]: value for key, value in values.items() if key.startswith("query.")}
        wanted = {n for n, p in parameters(spec, path, "get").items() if p["required"]}
        if wanted <= {key.split(".", 1)[1] for key in values}:
            statuses[name] = vendor.get(base_url + url, params=query, timeout=10).status_code

    assert len(statuses) >= 6
    assert set(statuses.values()) == {200}, statuses


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
    # StateProvince's minimum is 2 UTF-16 units, which one astral character meets: the document can
    # only say 1 character, so there the server is the stricter of the two.
    assert {line.split(":")[0] for line in broken} == {"['Addresses', 0, 'City']"}


def test_a_fault_report_marks_required_every_key_it_always_sends(spec, control, client_id):
    rule = {"match": {"clientId": client_id}, "fault": {"type": "DRIBBLE"}, "when": "after"}
    report = control.add_fault(**rule)
    schemas = spec["components"]["schemas"]
    required = set(schemas["FaultReport"]["required"])
    fault_schema = resolve(spec, schemas["FaultReport"]["properties"]["fault"])

    # What a rule did not ask for (delay, respond, times, probability, seed) is all it may lack.
    assert required == set(report) - {"fault"}
    assert set(fault_schema["required"]) == set(report["fault"]) == {"type", "chunks", "duration"}
