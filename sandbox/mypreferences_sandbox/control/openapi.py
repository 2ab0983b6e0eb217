"""The OpenAPI 3 document of the whole sandbox, and its route: ``GET /_sandbox/openapi.json``.

The document repeats nothing: it walks ``app.url_map``, and each route's view carries its own
contract (``contract.documented``); shapes come from the marshmallow schemas that validate and
describe requests. A route whose view has no contract fails the build. The vendor blueprint is
registered twice (at the root and under ``/Profiles``), and so is every vendor path here.

The route lives in its own blueprint, outside the control plane's guard: the document is read-only
and holds no state, so it answers with SANDBOX_CONTROL=false or without the control token too.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from flask import Blueprint, Flask, Response, current_app
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from ..contract import schemas
from ..contract.control_schemas import AFTER_ONLY
from ..contract.moments import EARLIEST, LATEST, timestamp
from ..contract.operations import (
    ARGUMENT,
    CONTROL_PREFIX,
    JSON_ONLY,
    VENDOR_TYPES,
    Answer,
    Contract,
    camel,
    contract_of,
    operation_name,
    operation_names,
    route_path,
)
from ..contract.operations import Body as RequestBody
from ..domain import auth
from ..http.exchange import documented, json_response
from ..wire import formats

bp = Blueprint("openapi", __name__, url_prefix=CONTROL_PREFIX)

OPENAPI_VERSION = "3.0.3"
EXTENSION = "sandbox.openapi"
ERROR = {"$ref": "#/components/schemas/Error"}

# An empty requirement makes a credential optional: the control plane wants its token only when
# SANDBOX_CONTROL_TOKEN is set, and the OAuth client may put its credentials in the form.
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "vendor": [{"PNAUTHINFO3": []}, {"bearer": []}],
    "control": [{}, {"controlToken": []}],
    "oauth": [{}, {"oauthClient": []}],
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
    "controlToken": {"type": "http", "scheme": "bearer", "description": "SANDBOX_CONTROL_TOKEN, when set."},
}
CONVERTER_TYPES = {"int": {"type": "integer", "minimum": 0}}
PATH_NOTES = {
    "clientId": f"The account; `{CONTROL_PREFIX.strip('/')}` is reserved for the control plane.",
    "alternateIdType": "Case ignored.",
    "alternateId": "Case ignored.",
    "ruleId": f"As `f1`, from POST {CONTROL_PREFIX}/faults.",
}
TAGS = {"vendor": "Profile API", "control": "Control plane", "oauth": "OAuth"}

# Two optional query parameters given together or not at all, neither empty (else 400): an exploded
# object whose members are both required says so in OpenAPI 3.0 (``?alternateIdType=CRM&alternateId=42``).
PAIRS = {"alternateIdPair": ("alternateIdType", "alternateId")}
# The views take a required query parameter given empty for a missing one (400).
FILLED = {"minLength": 1}
# What JSON Schema cannot say of a profile's AlternateIds (uniqueItems would not ignore case).
ALTERNATE_IDS = (
    "Each (AlternateIdType, AlternateId) pair at most once, case ignored (400); a pair another profile "
    "of the clientId holds is a 409 (a state document: two profiles holding one)."
)

# What an answer gives to address what it made, by operation name: a parameter of this name in an
# operation under the same root takes the runtime expression (OpenAPI links), and the caller's own
# path parameters (its clientId) pass on as sent. A stateful client, or fuzzer, follows them.
PRODUCED = {
    "create_profile": {
        "profileId": "$response.body#/ProfileId",
        "alternateIdType": "$response.body#/AlternateIds/0/AlternateIdType",
        "alternateId": "$response.body#/AlternateIds/0/AlternateId",
    },
    "add_fault": {"ruleId": "$response.body#/id"},
}

# Answered by the HTTP server itself, before the application sees the request, to any operation:
# gunicorn (the command line) past limit_request_line (4094 bytes) or limit_request_fields and
# limit_request_field_size (100 header fields of at most 8190 bytes); the in-process werkzeug
# server past 65536 bytes or 100 fields. Its own page, in HTML, never the vendor's error.
SERVER_PAGE = {"text/html": {"schema": {"type": "string"}}}
SERVER_ANSWERS = {
    414: (
        "URITooLong",
        "The request line (method, path and query) is longer than the HTTP server reads (gunicorn: "
        "4094 bytes). Answered by the server itself, in HTML.",
        SERVER_PAGE,
    ),
    431: (
        "RequestHeaderFieldsTooLarge",
        "More than 100 header fields, or one longer than the HTTP server reads (gunicorn: 8190 bytes). "
        "Answered by the server itself, in HTML.",
        SERVER_PAGE,
    ),
}
# Answered by the command line's server to a request whose body arrives late, before the
# application sees it: the vendor's error, in JSON whatever the Accept, and the connection closed.
BODY_ANSWERS = {
    408: (
        "RequestTimeout",
        "The body did not arrive within SANDBOX_BODY_TIMEOUT seconds of the head (the command line's "
        "server; 10 by default); the connection is closed. Never journaled, never faulted.",
        {"application/json": {"schema": ERROR}},
    ),
}

# The clock's range, and the years of it that no time zone offset takes outside it: 1971 to 8998.
CLOCK_RANGE = f"{timestamp(EARLIEST)} to {timestamp(LATEST)} (UTC)"
SAFE_YEARS = "^(197[1-9]|19[89][0-9]|[2-7][0-9]{3}|8[0-8][0-9]{2}|89[0-8][0-9]|899[0-8])-"
# RFC 6901: a JSON Pointer to a member, never the whole document ("" is refused as missing), and
# no member of a profile document has an empty name.
JSON_POINTER = "^(/([^/~]|~[01])+)+$"
DESCRIPTION = f"""\
A local stand-in for the PossibleNOW MyPreferences Profile API, and its control plane.

- Every vendor path also answers under `/Profiles/`; this document lists both forms (tag
  *Profile API under /Profiles*), as operations identical to the root ones.
- Vendor endpoints read and write JSON and XML (root elements and entries as in the vendor's
  samples, namespace `{formats.NAMESPACE}`; `ConsentStatus` by name in XML). Errors take the
  same negotiated format; a wrong method on a known path is a 405 with `Allow`
  (`#/components/responses/MethodNotAllowed`).
- String lengths count UTF-16 code units, as .NET does (an emoji counts two). Unknown fields are
  ignored and named in `X-Sandbox-Warning` headers.
- Any request may get the HTTP server's own 414 or 431 (`#/components/responses/URITooLong`,
  `RequestHeaderFieldsTooLarge`), in HTML, before the sandbox sees it; one whose body arrives
  late, the command line's 408 (`RequestTimeout`).
- Links lead from what an operation creates to the operations that address it: from
  `create_profile`'s ProfileId and first AlternateId, and from `add_fault`'s id.
- Fault rules (`POST {CONTROL_PREFIX}/faults`) can answer any vendor operation with any status,
  delay it or break its connection; their `match.operation` is the operationId without its
  blueprint (`create_profile`).
"""


def _operation(view: Any, contract: Contract, endpoint: str, operation_id: str) -> dict:
    """One method of one path, from the view's contract and docstring."""
    media = VENDOR_TYPES if contract.plane == "vendor" else JSON_ONLY
    responses = {str(status): _answer(answer, media) for status, answer in contract.answers.items()}
    for status, note in contract.errors.items():
        responses[str(status)] = {"description": note, "content": _content(ERROR, media)}
    if 401 in contract.errors and contract.plane == "vendor":
        realm = {"schema": {"type": "string"}, "description": f'PNAUTHINFO3 realm="{auth.REALM}"'}
        responses["401"]["headers"] = {"WWW-Authenticate": realm}
    shared = {**SERVER_ANSWERS, **(BODY_ANSWERS if contract.body is not None else {})}
    for status, (name, *_) in shared.items():
        responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [TAGS[contract.plane] + (" under /Profiles" if endpoint.startswith("prefixed_") else "")],
        "summary": contract.summary,
        # The views' docstrings state their contracts: they are the operations' descriptions.
        "description": (inspect.getdoc(view) or endpoint).replace("``", "`"),
        "responses": responses,
        "security": SECURITY[contract.plane] if contract.guarded else [],
    }
    if contract.query:
        operation["parameters"] = _query(contract.query)
    if contract.body is not None:
        operation["requestBody"] = _body(contract.body)
    return operation


def _answer(answer: Answer, media: tuple[str, ...]) -> dict:
    described: dict[str, Any] = {"description": answer.description}
    if answer.shape is not None:
        described["content"] = _content(answer.shape, media)
    if answer.headers:
        described["headers"] = {
            name: {"description": meaning, "schema": {"type": "string"}}
            for name, meaning in answer.headers.items()
        }
    return described


def _content(shape: Any, media: tuple[str, ...]) -> dict:
    return {media_type: {"schema": shape} for media_type in media}


def _body(body: RequestBody) -> dict:
    return {"required": body.required, "content": _content(body.shape, body.media_types)}


def _query(query: Any) -> list[dict]:
    if isinstance(query, type) and issubclass(query, Schema):
        return [{"in": "query", "schema": query}]  # apispec makes each field a parameter
    parameters = [
        {"in": "query", "name": q.name, "required": q.required, "schema": _filled(q.schema, q.required)}
        | _described(q.description)
        for q in query
    ]
    return _paired(parameters)


def _filled(schema: Mapping[str, Any], required: bool) -> dict:
    return dict(schema) | (FILLED if required and schema.get("type") == "string" else {})


def _paired(parameters: list[dict]) -> list[dict]:
    """Each pair of optional parameters given together or not at all, as one exploded object."""
    for name, members in PAIRS.items():
        found = {p["name"]: p for p in parameters if p["name"] in members and not p["required"]}
        if len(found) < len(members):
            continue
        members_of = {
            member: found[member]["schema"] | FILLED | _described(found[member].get("description"))
            for member in members
        }
        pair = {
            "in": "query",
            "name": name,
            "required": False,
            "style": "form",
            "explode": True,
            "description": f"{' and '.join(f'`{member}`' for member in members)}: both, or neither (400).",
            "schema": {"type": "object", "properties": members_of, "required": list(members)},
        }
        at = min(parameters.index(found[member]) for member in members)
        parameters = [p for p in parameters if p["name"] not in found]
        parameters.insert(at, pair)
    return parameters


def _described(description: str | None) -> dict:
    return {"description": description} if description else {}


def _path_parameters(rule: Rule) -> list[dict]:
    parameters = []
    for found in ARGUMENT.finditer(rule.rule):
        name = camel(found["name"])
        schema = CONVERTER_TYPES.get(found["converter"] or "", {"type": "string"})
        parameter = {"in": "path", "name": name, "required": True, "schema": dict(schema)}
        parameters.append(parameter | ({"description": PATH_NOTES[name]} if name in PATH_NOTES else {}))
    return parameters


def _add_paths(spec: APISpec, app: Flask) -> None:
    """One path per URL rule, every method of it an operation; a view without a contract fails."""
    paths: dict[str, dict[str, Any]] = {}
    built: list[Built] = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        contract = contract_of(view)
        if contract is None:
            raise LookupError(f"the view {rule.endpoint} has no contract (sandbox.contract.documented)")
        item = paths.setdefault(
            route_path(rule.rule), {"parameters": _path_parameters(rule), "operations": {}}
        )
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            operation_id = rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method.lower()}"
            operation = _operation(view, contract, rule.endpoint, operation_id)
            item["operations"][method.lower()] = operation
            built.append(Built(rule.endpoint, operation, item["parameters"]))
    _add_links(built)
    for path, item in paths.items():
        spec.path(path=path, operations=item["operations"], parameters=item["parameters"])


@dataclass(frozen=True)
class Built:
    """An operation as built, with its endpoint and its path's parameters, for the links."""

    endpoint: str
    operation: dict
    path_parameters: list[dict]

    @property
    def root(self) -> bool:
        """Whether it is served at the root (not under /Profiles)."""
        return not self.endpoint.startswith("prefixed_")

    def wanted(self) -> list[tuple[str, str]]:
        """Its required parameters, as (location, name)."""
        parameters = [*self.path_parameters, *self.operation.get("parameters", ())]
        return [(p["in"], p["name"]) for p in parameters if p.get("required") and "name" in p]


def _add_links(built: list[Built]) -> None:
    """Links from each answer that creates something (``PRODUCED``) to every operation under the same
    root that it can address: whose path it fills in, and that takes at least one produced value."""
    for source in built:
        produced = PRODUCED.get(operation_name(source.endpoint) or "")
        if produced is None:
            continue
        passed = {p["name"]: f"$request.path.{p['name']}" for p in source.path_parameters}
        links = {}
        for target in built:
            wanted = target.wanted()
            if target.root != source.root or not any(name in produced for _, name in wanted):
                continue
            if not all(name in produced or name in passed for where, name in wanted if where == "path"):
                continue
            values = {
                f"{where}.{name}": produced.get(name) or passed[name]
                for where, name in wanted
                if name in produced or (where == "path" and name in passed)
            }
            name = operation_name(target.endpoint) or target.endpoint
            links[name] = {"operationId": target.operation["operationId"], "parameters": values}
        for status, response in source.operation["responses"].items():
            if status.startswith("2") and "content" in response:
                response["links"] = links


def _describe_schemas(spec: APISpec, plugin: MarshmallowPlugin, app: Flask) -> None:
    """Each schema component described by its docstring, the vendor's with their XML names; the
    operations a fault rule can match, by name."""
    assert plugin.converter is not None
    components = spec.components.schemas
    for key, name in plugin.converter.refs.items():
        schema_cls = key[0]
        doc = inspect.getdoc(schema_cls)
        if doc and schema_cls.__doc__:  # inherited docstrings would describe another shape
            components[name]["description"] = doc.replace("``", "`")
        if issubclass(schema_cls, schemas.Wire):
            components[name].setdefault("xml", {})["namespace"] = schema_cls.xml_namespace
            for field in resolve_schema_instance(schema_cls).fields.values():
                inner = getattr(field, "inner", None)
                if "xml_item" in field.metadata and isinstance(inner, fields.Nested):
                    nested = plugin.converter.refs[make_schema_key(resolve_schema_instance(inner.nested))]  # type: ignore[arg-type]
                    components[nested].setdefault("xml", {})["name"] = field.metadata["xml_item"]
    components["ConsentStatusEntry"]["xml"]["name"] = "ConsentStatus"
    operations = components["Match"]["properties"]["operation"]
    operations["enum"] = sorted(operation_names(app.view_functions, "vendor"))
    components["Error"]["xml"] = {"name": "Error"}  # ASP.NET writes its errors in no namespace
    # A state document's profiles are read one by one as ImportedProfiles, so that every error can
    # be named by client and index: the schema leaves them Raw.
    clients = components["State"]["properties"]["clients"]
    clients["additionalProperties"]["items"] = {"$ref": "#/components/schemas/ImportedProfile"}
    _describe_rules(components, app.config["MAX_DELAY_MS"])


def _describe_rules(components: dict[str, Any], cap_ms: int) -> None:
    """The rules the views and their payloads' validators enforce beyond the fields' own types."""
    for written in ("CreateUserProfile", "ImportedProfile"):
        components[written]["properties"]["AlternateIds"]["description"] = ALTERNATE_IDS
    patch = components["PatchOperation"]
    patch["properties"]["path"] |= {"pattern": JSON_POINTER, "description": "A JSON Pointer (RFC 6901)."}
    # jsonpatch refuses an add, replace or test without a value.
    patch["anyOf"] = [{"properties": {"op": {"enum": ["remove"]}}}, {"required": ["value"]}]
    scope = components["TokenRequest"]["properties"]["scope"]
    scope |= {"pattern": "^[^/]+/[\\s\\S]+$", "description": "`ClientId/UserId`, both non-empty."}
    in_range = f"In the clock's range, {CLOCK_RANGE}, else 400; the pattern admits the years 1971 to 8998."
    for moment in (components["Clock"]["properties"]["time"], components["Rule"]["properties"]["expiresAt"]):
        moment |= {"pattern": SAFE_YEARS, "description": in_range}
    components["Advance"]["properties"]["seconds"] |= {
        "maximum": (LATEST - EARLIEST).total_seconds(),
        "description": f"The clock must stay in its range, {CLOCK_RANGE}, else 400.",
    }
    rule = components["Rule"]
    rule["anyOf"] = [{"required": [action]} for action in ("delay", "respond", "fault")]
    after_only = {"properties": {"type": {"enum": list(AFTER_ONLY)}}, "required": ["type"]}
    rule["not"] = {
        "anyOf": [
            {"required": ["respond", "fault"]},
            {"required": ["expiresAt", "ttl"]},
            {
                "properties": {"when": {"enum": ["before"]}, "fault": after_only},
                "required": ["when", "fault"],
            },
        ]
    }
    components["Delay"] |= {"minProperties": 1, "maxProperties": 1}
    capped = f"At most SANDBOX_MAX_DELAY_MS ({cap_ms} ms)."
    delays = components["Delay"]["properties"]["fixed"], *components["Uniform"]["properties"].values()
    for delay in delays:
        delay |= {"maximum": cap_ms, "description": capped}
    components["ConnectionFault"]["properties"]["duration"]["description"] = f"DRIBBLE and HANG: {capped}"
    components["Reset"]["not"] = {"required": ["clientId", "seed"]}


def build_spec(app: Flask) -> dict:
    """The OpenAPI document of ``app``: every route of its URL map, every schema they read or write."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="MyPreferences sandbox",
        version=metadata.version("mypreferences-sandbox"),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    assert plugin.converter is not None
    # apispec keeps its type table at class level: a copy keeps these mappings to this document.
    plugin.converter.field_mapping = dict(plugin.converter.field_mapping)
    plugin.map_to_openapi_type(schemas.Text, fields.String)
    plugin.map_to_openapi_type(schemas.Moment, "string", "date-time")
    plugin.map_to_openapi_type(schemas.Flag, fields.Boolean)
    plugin.map_to_openapi_type(schemas.Choice, "integer", None)
    plugin.converter.add_attribute_function(lambda _, field, **kwargs: schemas.openapi_attributes(field))
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=schemas.Error)
    spec.components.schema("ImportedProfile", schema=schemas.ImportedProfile)
    # A wrong method on a known path: no operation can carry it, so it is a shared response.
    spec.components.response(
        "MethodNotAllowed",
        {
            "description": "The path does not answer this method.",
            "headers": {"Allow": {"schema": {"type": "string"}, "description": "The methods it answers."}},
            "content": _content(ERROR, VENDOR_TYPES),
        },
    )
    for name, description, content in (*SERVER_ANSWERS.values(), *BODY_ANSWERS.values()):
        spec.components.response(name, {"description": description, "content": content})
    _add_paths(spec, app)
    _describe_schemas(spec, plugin, app)
    return spec.to_dict()


def current_spec() -> dict:
    """The current app's document, built on first use and kept in ``app.extensions``."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if EXTENSION not in app.extensions:
        # No lock: two first requests may both build it, and both builds are equal.
        app.extensions.setdefault(EXTENSION, build_spec(app))
    return app.extensions[EXTENSION]


@bp.get("/openapi.json")
@documented(
    "control",
    "This OpenAPI document",
    {200: Answer("This document.", {"type": "object"})},
    guarded=False,
)
def document() -> Response:
    """This sandbox's OpenAPI 3 document: every vendor, control-plane and OAuth route."""
    return json_response(current_spec())
