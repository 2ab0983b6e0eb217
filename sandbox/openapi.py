"""The OpenAPI 3 document of the whole sandbox, and its route: ``GET /_sandbox/openapi.json``.

Request and response shapes come from the marshmallow schemas that validate requests. Paths come
from ``app.url_map`` itself, so a route cannot exist undocumented: a view missing from
``_operations`` makes the build fail. The vendor blueprint is registered twice (at the root and
under ``/Profiles``), and so is every vendor path here: a duplicated path stays correct by
construction, where a second ``servers`` entry would wrongly apply to the control plane too.

The route lives in its own blueprint, outside the control plane's guard: the document is read-only
and holds no state, so it answers with SANDBOX_CONTROL=false or without the control token too.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from flask import Blueprint, Flask, Response, current_app
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from . import api, auth, control, faults, formats, schemas

bp = Blueprint("openapi", __name__, url_prefix="/_sandbox")

OPENAPI_VERSION = "3.0.3"
EXTENSION = "sandbox.openapi"

# Vendor bodies are read, and answered, in any of these; JSON Patch is read as JSON only.
BODY_TYPES = ("application/json", "text/json", "application/xml", "text/xml")
PATCH_TYPES = ("application/json-patch+json", "application/json", "text/json")
JSON_ONLY = ("application/json",)

VENDOR_SECURITY: list[dict[str, list[str]]] = [{"PNAUTHINFO3": []}, {"bearer": []}]
# An empty requirement makes the token optional: the control plane wants one only when
# SANDBOX_CONTROL_TOKEN is set.
CONTROL_SECURITY: list[dict[str, list[str]]] = [{}, {"controlToken": []}]

# A URL rule's arguments, <converter:name> or <name>; their OpenAPI names are camelCase.
ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
CONVERTER_TYPES = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number", "minimum": 0}}
PATH_NOTES = {
    "clientId": "The account; `_sandbox` is reserved for the control plane.",
    "alternateIdType": "Case ignored.",
    "alternateId": "Case ignored.",
    "ruleId": "As `f1`, from POST /_sandbox/faults.",
}

ERRORS = {
    400: "Invalid request: every broken rule at once, in ModelState under its field path "
    "(`Addresses[0].City`).",
    401: "Missing or unacceptable Authorization (as SANDBOX_AUTH_MODE decides; never in mode `off`).",
    403: "Strict mode: the user lacks the `read` (GET) or `write` permission.",
    404: "Unknown profile or another clientId's; strict mode: an unknown clientId.",
    406: "`Accept` names none of the media types; nothing is stored.",
    409: "An (AlternateIdType, AlternateId) pair is held by another profile of the clientId (case ignored).",
    413: "The body is larger than SANDBOX_MAX_CONTENT_LENGTH.",
    415: "The Content-Type is not one this operation reads.",
}
CONTROL_ERRORS = {
    400: "The payload is invalid: ModelState names each problem.",
    401: "SANDBOX_CONTROL_TOKEN is set and the call lacks `Authorization: Bearer <token>`.",
    404: "The control plane is turned off (SANDBOX_CONTROL=false).",
}

DESCRIPTION = """\
A local stand-in for the PossibleNOW MyPreferences Profile API, and its control plane.

- Every vendor path also answers under `/Profiles/`; this document lists both forms (tag
  *Profile API under /Profiles*), as operations identical to the root ones.
- Vendor endpoints read and write JSON and XML (root elements and entries as in the vendor's
  samples, namespace `{namespace}`; `ConsentStatus` by name in XML). Errors take the same
  negotiated format; a wrong method on a known path is a 405 with `Allow`
  (`#/components/responses/MethodNotAllowed`).
- String lengths count UTF-16 code units, as .NET does (an emoji counts two). Unknown fields are
  ignored and named in `X-Sandbox-Warning` headers.
- Fault rules (`POST /_sandbox/faults`) can answer any vendor operation with any status, delay it
  or break its connection; their `match.operation` is the operationId without its blueprint
  (`create_profile`).
"""


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _content(schema: Mapping[str, Any], media_types: Iterable[str]) -> dict[str, Any]:
    return {media_type: {"schema": dict(schema)} for media_type in media_types}


def _body(schema: Mapping[str, Any], media_types: Iterable[str] = BODY_TYPES, required: bool = True) -> dict:
    return {"required": required, "content": _content(schema, media_types)}


def _query(name: str, schema: Mapping[str, Any], description: str = "", required: bool = False) -> dict:
    parameter = {"in": "query", "name": name, "required": required, "schema": dict(schema)}
    return {**parameter, "description": description} if description else parameter


# --- vendor operations ----------------------------------------------------------------------

WARNINGS_HEADER = {
    "X-Sandbox-Warning": {
        "description": "One per unknown or read-only field that was ignored.",
        "schema": {"type": "string"},
    }
}


def _profile(description: str, headers: Mapping[str, Any] | None = None) -> dict:
    response: dict[str, Any] = {
        "description": description,
        "content": _content(_ref("UserProfile"), BODY_TYPES),
    }
    return {**response, "headers": dict(headers)} if headers else response


def _vendor(
    success: Mapping[str, Any],
    errors: Iterable[int],
    *,
    parameters: Iterable[Mapping[str, Any] | str] = (),
    body: Mapping[str, Any] | None = None,
    notes: Mapping[int, str] | None = None,
) -> dict:
    """A vendor operation: its successes, its errors (Error, negotiated) and its inputs."""
    responses = {str(status): response for status, response in success.items()}
    for status in errors:
        description = (notes or {}).get(status, ERRORS[status])
        responses[str(status)] = {"description": description, "content": _content(_ref("Error"), BODY_TYPES)}
        if status == 401:
            responses["401"]["headers"] = {
                "WWW-Authenticate": {
                    "schema": {"type": "string"},
                    "description": f'PNAUTHINFO3 realm="{auth.REALM}"',
                }
            }
    operation: dict[str, Any] = {"responses": responses, "security": VENDOR_SECURITY}
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = dict(body)
    return operation


# apispec turns a parameter given by name into a reference to that component.
RETRIEVE = ("implied", "includeConsentHistory")
ADDRESSED = ("alternateIdType", "alternateId")
WRITE_ERRORS = (400, 401, 403, 404, 406, 409, 413, 415)
READ_ERRORS = (400, 401, 403, 404, 406)
PATCH_BODY = {
    "oneOf": [
        {"type": "array", "items": _ref("PatchOperation")},
        _ref("PatchDocument"),
    ]
}


def _required_address() -> list[dict]:
    return [
        _query(
            "alternateIdType", {"type": "string"}, "The AlternateId's type (case ignored).", required=True
        ),
        _query("alternateId", {"type": "string"}, "The AlternateId (case ignored).", required=True),
    ]


def _vendor_operations() -> dict[Callable, dict]:
    updated = {"200": _profile("The profile as stored now.", WARNINGS_HEADER)}
    patched = {"200": _profile("The profile as stored now.")}
    search = [
        _query("emailAddress", {"type": "string"}, "Search: active profiles with this email (case ignored)."),
        _query("phoneNumber", {"type": "string"}, "Search: active profiles with a phone of the same digits."),
        _query(
            "lastName",
            {"type": "string"},
            "Search: names containing these (case ignored); required with firstName or middleName.",
        ),
        _query("firstName", {"type": "string"}),
        _query("middleName", {"type": "string"}),
        _query(
            "customFields[0].Name",
            {"type": "string"},
            "Search by custom field; [1], [2], ... add more pairs.",
        ),
        _query(
            "customFields[0].Value", {"type": "string"}, "Without it, any value of the named field matches."
        ),
    ]
    return {
        api.create_profile: _vendor(
            {
                "201": _profile(
                    "Created.",
                    {
                        "Location": {"description": "The new profile's URL.", "schema": {"type": "string"}},
                        **WARNINGS_HEADER,
                    },
                ),
                "200": _profile("Upsert: merged into the active holder of the AlternateId.", WARNINGS_HEADER),
            },
            WRITE_ERRORS,
            parameters=ADDRESSED,
            body=_body(_ref("CreateUserProfile")),
            notes={404: "Strict mode: an unknown clientId."},
        ),
        api.find_profiles: _vendor(
            {
                "200": {
                    "description": "By AlternateId: one UserProfile. A search: a list (`[]`: no match).",
                    "content": _content(
                        {"oneOf": [_ref("UserProfile"), _ref("ArrayOfUserProfile")]}, BODY_TYPES
                    ),
                }
            },
            READ_ERRORS,
            parameters=(*ADDRESSED, *search, *RETRIEVE),
            notes={
                400: "No search given, a bad flag, or half of an AlternateId pair.",
                403: "More matches than SANDBOX_MAX_SEARCH_RESULTS (50, as documented); strict mode: no "
                "`read` permission.",
                404: "No active profile holds the AlternateId; strict mode: an unknown clientId.",
            },
        ),
        api.replace_by_alternate_id: _vendor(
            updated,
            WRITE_ERRORS,
            parameters=_required_address(),
            body=_body(_ref("CreateUserProfile")),
            notes={404: "No active profile holds the AlternateId."},
        ),
        api.patch_by_alternate_id_query: _vendor(
            patched,
            WRITE_ERRORS,
            parameters=_required_address(),
            body=_body(PATCH_BODY, PATCH_TYPES),
            notes={404: "No active profile holds the AlternateId."},
        ),
        api.get_by_alternate_id: _vendor(
            {"200": _profile("The active profile holding the AlternateId.")},
            READ_ERRORS,
            parameters=RETRIEVE,
            notes={404: "No active profile holds the AlternateId."},
        ),
        api.patch_by_alternate_id: _vendor(
            patched,
            WRITE_ERRORS,
            body=_body(PATCH_BODY, PATCH_TYPES),
            notes={404: "No active profile holds the AlternateId."},
        ),
        api.get_profile: _vendor(
            {"200": _profile("The profile, active or not.")}, READ_ERRORS, parameters=RETRIEVE
        ),
        api.replace_profile: _vendor(updated, WRITE_ERRORS, body=_body(_ref("CreateUserProfile"))),
        api.merge_profile: _vendor(updated, WRITE_ERRORS, body=_body(_ref("CreateUserProfile"))),
        api.patch_profile: _vendor(patched, WRITE_ERRORS, body=_body(PATCH_BODY, PATCH_TYPES)),
        api.delete_profile: _vendor(
            {"204": {"description": "Deleted; its AlternateIds are free at once."}},
            (400, 401, 403, 404, 406),
            parameters=[_query("reasonCode", {"type": "string", "maxLength": 256})],
        ),
        api.activate_profile: _vendor(
            {"200": _profile("Active, its ReasonCode cleared.")}, (401, 403, 404, 406)
        ),
        api.deactivate_profile: _vendor(
            {"200": _profile("Inactive; found by ProfileId only until reactivated.")},
            (400, 401, 403, 404, 406, 413, 415),
            body=_body(_ref("ReasonCode"), required=False),
        ),
        api.add_consents: _vendor(
            {"200": _profile("The profile with the consents added.", WARNINGS_HEADER)},
            (400, 401, 403, 404, 406, 413, 415),
            body=_body(_ref("CreateCustomerConsentList")),
        ),
        api.consent_statuses: _vendor(
            {
                "200": {
                    "description": "The four statuses, by number and name.",
                    "content": _content(_ref("ConsentStatusList"), BODY_TYPES),
                }
            },
            (401, 403, 404, 406),
        ),
    }


# --- control plane, OAuth, this document ----------------------------------------------------


def _control(
    success: Mapping[str, Any],
    errors: Iterable[int] = (401, 404),
    *,
    parameters: Iterable[Mapping[str, Any] | str] = (),
    body: Mapping[str, Any] | None = None,
    notes: Mapping[int, str] | None = None,
    security: list | None = None,
) -> dict:
    """A control-plane operation: JSON in and out."""
    responses = dict(success)
    for status in errors:
        description = (notes or {}).get(status, CONTROL_ERRORS.get(status, ""))
        responses[str(status)] = {"description": description, "content": _content(_ref("Error"), JSON_ONLY)}
    operation: dict[str, Any] = {
        "responses": responses,
        "security": CONTROL_SECURITY if security is None else security,
    }
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = dict(body)
    return operation


def _json(description: str, schema: Mapping[str, Any]) -> dict:
    return {"description": description, "content": _content(schema, JSON_ONLY)}


def _control_operations() -> dict[Callable, dict]:
    client = _query("clientId", {"type": "string"}, "Only this client's.")
    clock = {"200": _json("The sandbox's time.", _ref("ClockReport"))}
    report = _ref("FaultReport")
    # apispec expands a schema given as a query parameter into one parameter per field.
    filters = {"in": "query", "schema": control.RequestFilterSchema}
    return {
        control.health: _control(
            {
                "200": _json(
                    "Always, while the server runs (also with a token, also when turned off).", _ref("Health")
                )
            },
            (),
            security=[],
        ),
        control.reset: _control(
            {"200": _json("What was reset: `all` or the clientId.", _ref("ResetReport"))},
            (400, 401, 404),
            parameters=[client],
            body=_body(_ref("Reset"), JSON_ONLY, required=False),
        ),
        control.add_fault: _control(
            {
                "201": {
                    **_json("The rule as reported, with its id.", report),
                    "headers": {"Location": {"schema": {"type": "string"}, "description": "The rule's URL."}},
                }
            },
            (400, 401, 404),
            body=_body(_ref("Rule"), JSON_ONLY),
        ),
        control.list_faults: _control(
            {"200": _json("Every rule, in the order they are tried.", {"type": "array", "items": report})},
            parameters=[client],
        ),
        control.get_fault: _control(
            {"200": _json("The rule.", report)}, notes={404: "Unknown rule, or the control plane is off."}
        ),
        control.delete_fault: _control(
            {"204": {"description": "Removed."}}, notes={404: "Unknown rule, or the control plane is off."}
        ),
        control.clear_faults: _control({"204": {"description": "Removed."}}, parameters=[client]),
        control.list_requests: _control(
            {
                "200": _json(
                    "Journal entries, oldest first.", {"type": "array", "items": _ref("JournalEntry")}
                )
            },
            (400, 401, 404),
            parameters=[filters],
        ),
        control.count_requests: _control(
            {"200": _json("How many entries match.", _ref("Count"))}, (400, 401, 404), parameters=[filters]
        ),
        control.clear_requests: _control({"204": {"description": "Forgotten."}}, parameters=[client]),
        control.export_state: _control(
            {"200": _json("The profiles as stored, per clientId.", _ref("State"))}, parameters=[client]
        ),
        control.import_state: _control(
            {"200": _json("How many profiles each client now has.", _ref("ImportReport"))},
            (400, 401, 404, 409),
            body=_body(_ref("State"), JSON_ONLY),
            notes={409: "A ProfileId or an AlternateId used twice; nothing changed."},
        ),
        control.get_clock: _control(clock),
        control.set_clock: _control(clock, (400, 401, 404), body=_body(_ref("Clock"), JSON_ONLY)),
        control.advance_clock: _control(clock, (400, 401, 404), body=_body(_ref("Advance"), JSON_ONLY)),
        control.release_clock: _control(clock),
        auth.issue_token: {
            "requestBody": _body(_ref("TokenRequest"), ("application/x-www-form-urlencoded",)),
            "responses": {
                "200": _json(
                    "A bearer token for `Authorization: Bearer <token>` on the clientId.", _ref("Token")
                ),
                "400": _json("`unsupported_grant_type` or `invalid_scope`.", _ref("OAuthError")),
                "401": _json("`invalid_client`.", _ref("OAuthError")),
            },
            # The OAuth client's credentials go in a Basic header or in the form.
            "security": [{}, {"oauthClient": []}],
        },
        document: {
            "responses": {"200": _json("This document.", {"type": "object"})},
            "security": [],
        },
    }


def _operations() -> dict[Callable, dict]:
    """Every documented view's operation; a view without a summary fails the build, as one without
    an operation does."""
    summaries = _summaries()
    operations = {**_vendor_operations(), **_control_operations()}
    return {view: {"summary": summaries[view], **operation} for view, operation in operations.items()}


def _summaries() -> dict[Callable, str]:
    return {
        api.create_profile: "Create a profile (or upsert by AlternateId)",
        api.find_profiles: "Find profiles by AlternateId, email, phone, name or custom fields",
        api.replace_by_alternate_id: "Overwrite the holder of an AlternateId",
        api.patch_by_alternate_id_query: "JSON Patch the holder of an AlternateId",
        api.get_by_alternate_id: "Retrieve the holder of an AlternateId",
        api.patch_by_alternate_id: "JSON Patch the holder of an AlternateId",
        api.get_profile: "Retrieve a profile",
        api.replace_profile: "Overwrite a profile",
        api.merge_profile: "Merge into a profile",
        api.patch_profile: "JSON Patch a profile",
        api.delete_profile: "Delete a profile",
        api.activate_profile: "Activate a profile",
        api.deactivate_profile: "Deactivate a profile",
        api.add_consents: "Record consents on a profile",
        api.consent_statuses: "List the consent statuses",
        control.health: "Health",
        control.reset: "Reset everything, or one client",
        control.add_fault: "Add a fault rule",
        control.list_faults: "List fault rules",
        control.get_fault: "Get a fault rule",
        control.delete_fault: "Remove a fault rule",
        control.clear_faults: "Remove every fault rule, or a client's",
        control.list_requests: "Read the request journal",
        control.count_requests: "Count journal entries",
        control.clear_requests: "Forget the journal, or a client's entries",
        control.export_state: "Export profiles",
        control.import_state: "Import profiles",
        control.get_clock: "Read the clock",
        control.set_clock: "Set and freeze the clock",
        control.advance_clock: "Advance the clock",
        control.release_clock: "Release the clock",
        auth.issue_token: "OAuth 2.0 client credentials: a bearer token",
        document: "This OpenAPI document",
    }


# --- components that no marshmallow schema describes ----------------------------------------


def _plain_schemas(rule: Mapping[str, Any]) -> dict[str, dict]:
    """Response shapes the views build by hand; ``rule`` is the Rule component, which a report extends."""
    nullable_string = {"type": "string", "nullable": True}
    report_fields = {
        "id": {"type": "string"},
        "when": {"type": "string", "enum": list(faults.WHEN)},
        "expiresAt": nullable_string,
        "matched": {"type": "integer", "description": "Matching requests seen, skipped ones included."},
        "hits": {"type": "integer", "description": "Times the rule fired."},
        "remaining": {"type": "integer", "nullable": True, "description": "null: no limit."},
        "state": {"type": "string", "enum": ["active", "spent", "expired"]},
    }
    reported = {key: value for key, value in rule["properties"].items() if key != "ttl"}
    return {
        "Error": {
            "type": "object",
            "description": "ASP.NET Web API's HttpError. In XML, `<Error>`, ModelState keys encoded as "
            "XmlConvert.EncodeLocalName does, several messages of a key joined by a space.",
            "required": ["Message"],
            "properties": {
                "Message": {"type": "string"},
                "ModelState": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "xml": {"name": "Error"},
        },
        "ArrayOfUserProfile": {
            "type": "array",
            "items": _ref("UserProfile"),
            "xml": {"name": "ArrayOfUserProfile", "namespace": formats.NAMESPACE, "wrapped": True},
        },
        "ConsentStatusList": {
            "type": "array",
            "items": _ref("ConsentStatusEntry"),
            "xml": {"name": "ConsentStatusList", "namespace": formats.NAMESPACE, "wrapped": True},
        },
        "Health": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["ok"]}, "version": {"type": "string"}},
        },
        "ResetReport": {"type": "object", "properties": {"reset": {"type": "string"}}},
        "FaultReport": {"type": "object", "properties": {**reported, **report_fields}},
        "JournalEntry": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "time": {"type": "string", "format": "date-time"},
                "method": {"type": "string"},
                "path": {"type": "string"},
                "clientId": nullable_string,
                "query": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "headers": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Credentials redacted.",
                },
                "body": {"type": "string"},
                "bodyTruncated": {"type": "boolean"},
                "status": {"type": "integer", "nullable": True, "description": "null: a connection fault."},
                "durationMs": {"type": "number"},
                "profileId": {"type": "integer"},
                "error": {"type": "object"},
                "conflict": {"type": "object"},
                "fault": {"type": "object"},
            },
        },
        "Count": {"type": "object", "properties": {"count": {"type": "integer"}}},
        "ImportReport": {
            "type": "object",
            "properties": {"imported": {"type": "object", "additionalProperties": {"type": "integer"}}},
        },
        "ClockReport": {
            "type": "object",
            "properties": {"now": {"type": "string", "format": "date-time"}, "frozen": {"type": "boolean"}},
        },
        "TokenRequest": {
            "type": "object",
            "required": ["grant_type", "scope"],
            "properties": {
                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                "scope": {"type": "string", "description": "ClientId/UserId"},
                "client_id": {"type": "string", "description": "Unless given in a Basic header."},
                "client_secret": {"type": "string"},
            },
        },
        "Token": {
            "type": "object",
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer"},
                "scope": {"type": "string"},
            },
        },
        "OAuthError": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "string",
                    "enum": ["unsupported_grant_type", "invalid_scope", "invalid_client"],
                },
                "error_description": {"type": "string"},
            },
        },
    }


SECURITY_SCHEMES = {
    "PNAUTHINFO3": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`PNAUTHINFO3-HMAC-SHA256 Credential=<UserId>/<ISO 8601> Signature=<Base64>` (also "
        "SHA384, SHA512 and the un-keyed `PNAUTHINFO3-SHA256` family).",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `POST /oauth/token`."},
    "oauthClient": {"type": "http", "scheme": "basic", "description": "The OAuth client's id and secret."},
    "controlToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "SANDBOX_CONTROL_TOKEN, when it is set.",
    },
}

PARAMETERS = {
    "alternateIdType": _query(
        "alternateIdType",
        {"type": "string"},
        "With alternateId: address the active profile holding this AlternateId (case ignored).",
    ),
    "alternateId": _query("alternateId", {"type": "string"}, "With alternateIdType."),
    "implied": _query("implied", {"type": "boolean", "default": True}, "Accepted and checked; no effect."),
    "includeConsentHistory": _query(
        "includeConsentHistory",
        {"type": "boolean", "default": True},
        "false: only the latest consent of each ConsentType and Locale.",
    ),
}


# --- marshmallow fields to OpenAPI ----------------------------------------------------------

# Generated response fields that are null when there is nothing to generate (a non-US address has
# no Cass*, an unknown country code no Country, ...). The response schemas cannot say so: dump
# never checks allow_none, so they do not set it.
NULL_WHEN_NOT_GENERATED = frozenset(
    {
        "Country",
        "CassAddress1",
        "CassAddress2",
        "CassCity",
        "CassStateProvince",
        "CassPostalCode",
        "PhoneNumberNumeric",
        "ExpirationDate",
    }
)


def _wire_field(self: Any, field: fields.Field, **kwargs: Any) -> dict:
    """OpenAPI attributes of the sandbox's own fields and metadata (an apispec attribute function)."""
    extra: dict[str, Any] = {}
    if isinstance(field, schemas.Text):
        # Text keeps its limits as attributes, not validators; required also refuses "" and blanks.
        minimum = max(field.min_length, 1 if field.required else 0)
        if minimum:
            extra["minLength"] = minimum
        if field.max_length is not None:
            extra["maxLength"] = field.max_length
    if isinstance(field, schemas.Moment):
        extra["description"] = "ISO 8601; without a zone it is UTC."
    if field.metadata.get("xml_names") == schemas.CONSENT_STATUSES:
        named = ", ".join(f"{number} {name}" for number, name in schemas.CONSENT_STATUSES.items())
        extra["enum"] = list(schemas.CONSENT_STATUSES)
        extra["description"] = f"{named}. In XML, the name; either form is read."
    if field.name in NULL_WHEN_NOT_GENERATED and not field.allow_none:
        extra["nullable"] = True
    if "xml_name" in field.metadata:
        extra["xml"] = {"name": field.metadata["xml_name"]}
    if isinstance(field, fields.List) and "xml_item" in field.metadata:
        extra["xml"] = {"wrapped": True}
    return extra


def _register_schemas(spec: APISpec, plugin: MarshmallowPlugin) -> None:
    """Every marshmallow schema the document names (their nested ones follow), described by their
    docstrings, with their XML names."""
    named: list[type[Schema]] = [
        schemas.CreateUserProfile,
        schemas.UserProfile,
        schemas.ReasonCode,
        schemas.CreateCustomerConsentList,
        schemas.PatchDocument,
        schemas.ConsentStatusEntry,
        schemas.ImportedProfile,
        control.ResetSchema,
        control.ClockSchema,
        control.AdvanceSchema,
        control.StateSchema,
        faults.RuleSchema,
    ]
    for schema in named:
        spec.components.schema(plugin.schema_name_resolver(schema), schema=schema)
    assert plugin.converter is not None
    components = spec.components.schemas
    for key, name in plugin.converter.refs.items():
        schema_cls = key[0]
        doc = inspect.getdoc(schema_cls)
        if doc and schema_cls.__doc__:  # inherited docstrings would describe another shape
            components[name]["description"] = doc.replace("``", "`")
        if schema_cls.__module__ == schemas.__name__:
            components[name].setdefault("xml", {})["namespace"] = formats.NAMESPACE
            _name_xml_items(resolve_schema_instance(schema_cls), plugin, components)
    components["ConsentStatusEntry"]["xml"]["name"] = "ConsentStatus"
    # StateSchema leaves each profile Raw so that every error can be named per client and index;
    # each is read as an ImportedProfile (and export writes them in a form that reads back).
    clients = components["State"]["properties"]["clients"]
    clients["additionalProperties"]["items"] = _ref("ImportedProfile")


def _name_xml_items(schema: Schema, plugin: MarshmallowPlugin, components: dict) -> None:
    """Name each collection entry's XML element as the schema's ``xml_item`` says."""
    assert plugin.converter is not None
    for field in schema.fields.values():
        inner = getattr(field, "inner", None)
        if "xml_item" in field.metadata and isinstance(inner, fields.Nested):
            nested = resolve_schema_instance(inner.nested)  # type: ignore[arg-type]
            name = plugin.converter.refs[make_schema_key(nested)]
            components[name].setdefault("xml", {})["name"] = field.metadata["xml_item"]


# --- paths ----------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _path(rule: Rule) -> str:
    return ARGUMENT.sub(lambda found: "{" + _camel(found["name"]) + "}", rule.rule)


def _tag(endpoint: str) -> str:
    blueprint = endpoint.partition(".")[0]
    return {
        "api": "Profile API",
        "prefixed_api": "Profile API under /Profiles",
        "control": "Control plane",
        "openapi": "Control plane",
        "oauth": "OAuth",
    }[blueprint]


def _add_paths(spec: APISpec, app: Flask) -> None:
    """One path per URL rule, every method of it an operation; undocumented views fail the build."""
    operations = _operations()
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if view not in operations:
            raise LookupError(f"the view {rule.endpoint} has no OpenAPI operation in sandbox.openapi")
        item = paths.setdefault(_path(rule), {"parameters": _path_parameters(rule), "operations": {}})
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            operation_id = rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method.lower()}"
            # The views' docstrings state their contracts: they are the operations' descriptions.
            doc = (inspect.getdoc(view) or rule.endpoint).replace("``", "`")
            item["operations"][method.lower()] = {
                "operationId": operation_id,
                "tags": [_tag(rule.endpoint)],
                "description": doc,
                **operations[view],
            }
    for path, item in paths.items():
        spec.path(path=path, operations=item["operations"], parameters=item["parameters"])


def _path_parameters(rule: Rule) -> list[dict]:
    parameters = []
    for found in ARGUMENT.finditer(rule.rule):
        name = _camel(found["name"])
        schema = CONVERTER_TYPES.get(found["converter"] or "", {"type": "string"})
        parameter = {"in": "path", "name": name, "required": True, "schema": dict(schema)}
        parameters.append({**parameter, "description": PATH_NOTES[name]} if name in PATH_NOTES else parameter)
    return parameters


def build_spec(app: Flask) -> dict:
    """The OpenAPI document of ``app``: every route of its URL map, every schema they read or write."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="MyPreferences sandbox",
        version=metadata.version("mypreferences-sandbox"),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION.format(namespace=formats.NAMESPACE)},
    )
    assert plugin.converter is not None
    # apispec keeps its type table at class level: a copy keeps these mappings to this document.
    plugin.converter.field_mapping = dict(plugin.converter.field_mapping)
    plugin.map_to_openapi_type(schemas.Text, fields.String)
    plugin.map_to_openapi_type(schemas.Moment, "string", "date-time")
    plugin.map_to_openapi_type(schemas.Flag, fields.Boolean)
    plugin.map_to_openapi_type(schemas.Status, "integer", None)
    plugin.converter.add_attribute_function(_wire_field)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, parameter in PARAMETERS.items():
        spec.components.parameter(name, "query", copy.deepcopy(parameter))
    _register_schemas(spec, plugin)
    # A wrong method on a known path: no operation can carry it, so it is a shared response.
    spec.components.response(
        "MethodNotAllowed",
        {
            "description": "The path does not answer this method.",
            "headers": {"Allow": {"schema": {"type": "string"}, "description": "The methods it answers."}},
            "content": _content(_ref("Error"), BODY_TYPES),
        },
    )
    for name, schema in _plain_schemas(spec.components.schemas["Rule"]).items():
        spec.components.schema(name, schema)
    _add_paths(spec, app)
    return spec.to_dict()


def current_spec() -> dict:
    """The current app's document, built on first use and kept in ``app.extensions``."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if EXTENSION not in app.extensions:
        # No lock: two first requests may both build it, and both builds are equal.
        app.extensions.setdefault(EXTENSION, build_spec(app))
    return app.extensions[EXTENSION]


@bp.get("/openapi.json")
def document() -> Response:
    """This sandbox's OpenAPI 3 document: every vendor, control-plane and OAuth route."""
    return Response(json.dumps(current_spec(), ensure_ascii=False), mimetype="application/json")
