"""The OpenAPI 3 document of the whole sandbox, and its route: ``GET /_sandbox/openapi.json``.

The document repeats nothing: it walks ``app.url_map`` and the contracts, each route's on its view
(``http.exchange.documented``), and what its plane shares, in ``contract.operations``; shapes and their
rules come from the marshmallow schemas that enforce them (validators, field metadata, a schema's
``json_schema``, a field's ``cap`` on the configuration). A route whose view has no contract fails
the build. Every vendor path is here twice, at the root and under ``/Profiles``, as the vendor
blueprint is registered.

The route lives in its own blueprint, outside the control plane's guard: the document is read-only
and holds no state, so it answers with SANDBOX_CONTROL=false or without the control token too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from flask import Blueprint, Flask, Response, current_app
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from ..contract import operations as ops
from ..contract import schemas
from ..contract.operations import Answer, Contract, Pair, Query
from ..http.exchange import documented, json_response

bp = Blueprint("openapi", __name__, url_prefix=ops.CONTROL_PREFIX)

OPENAPI_VERSION = "3.0.3"
EXTENSION = "sandbox.openapi"
STRING = {"type": "string"}


def _operation(view: Any, contract: Contract, endpoint: str, operation_id: str) -> dict:
    """One method of one path, from the view's contract and docstring."""
    plane = ops.PLANES[contract.plane]
    responses = {
        str(status): _answer(answer, plane.media_types) for status, answer in contract.every_answer().items()
    }
    shared = {**ops.SERVER_ANSWERS, **(ops.BODY_ANSWERS if contract.body is not None else {})}
    for status, answer in shared.items():
        responses[str(status)] = {"$ref": f"#/components/responses/{answer.name}"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [plane.title + ("" if _root(endpoint) else " under /Profiles")],
        "summary": contract.summary,
        # The views' docstrings state their contracts: they are the operations' descriptions.
        "description": (inspect.getdoc(view) or endpoint).replace("``", "`"),
        "responses": responses,
        "security": list(plane.security) if contract.guarded else [],
    }
    if contract.query:
        operation["parameters"] = _query(contract.query)
    if contract.body is not None:
        operation["requestBody"] = {
            "required": contract.body.required,
            "content": _content(contract.body.shape, contract.body.media_types),
        }
    return operation


def _root(endpoint: str) -> bool:
    """Whether an endpoint is served at the root (not under /Profiles)."""
    return not endpoint.startswith("prefixed_")


def _answer(answer: Answer, media: tuple[str, ...]) -> dict:
    described: dict[str, Any] = {"description": answer.description}
    if answer.shape is not None:
        described["content"] = _content(answer.shape, media)
    if answer.headers:
        described["headers"] = {
            name: {"description": meaning, "schema": STRING} for name, meaning in answer.headers.items()
        }
    return described


def _content(shape: Any, media: tuple[str, ...]) -> dict:
    return {media_type: {"schema": shape} for media_type in media}


def _query(query: tuple[Query | Pair, ...] | type[Schema]) -> list[dict]:
    if isinstance(query, type):
        return [{"in": "query", "schema": query}]  # apispec makes each field a parameter
    return [_paired(q) if isinstance(q, Pair) else _parameter(q) for q in query]


def _parameter(query: Query) -> dict:
    parameter = {"in": "query", "name": query.name, "required": query.required, "schema": query.admitted}
    return parameter | _described(query.description)


def _paired(pair: Pair) -> dict:
    """A pair of parameters as one exploded object, its members both required."""
    members = {q.name: q.admitted | _described(q.description) for q in pair.members}
    schema = {"type": "object", "properties": members, "required": list(members)}
    exploded = {"style": "form", "explode": True, "schema": schema}
    return {"in": "query", "name": pair.name, "required": False, "description": pair.description, **exploded}


def _described(description: str | None) -> dict:
    return {"description": description} if description else {}


def _path_parameters(rule: Rule) -> list[dict]:
    parameters = []
    for found in ops.ARGUMENT.finditer(rule.rule):
        name = ops.camel(found["name"])
        schema = dict(ops.CONVERTED.get(found["converter"] or "", STRING))
        parameter = {"in": "path", "name": name, "required": True, "schema": schema}
        parameters.append(parameter | _described(ops.ARGUMENT_NOTES.get(name)))
    return parameters


def _add_paths(spec: APISpec, app: Flask) -> None:
    """One path per URL rule, every method of it an operation; a view without a contract fails."""
    paths: dict[str, dict[str, Any]] = {}
    built: list[Built] = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        contract = ops.contract_of(view)
        if contract is None:
            raise LookupError(f"the view {rule.endpoint} has no contract (http.exchange.documented)")
        item = paths.setdefault(
            ops.route_path(rule.rule), {"parameters": _path_parameters(rule), "operations": {}}
        )
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            operation_id = rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method.lower()}"
            operation = _operation(view, contract, rule.endpoint, operation_id)
            item["operations"][method.lower()] = operation
            built.append(Built(rule.endpoint, operation, item["parameters"], contract.produces))
    _add_links(built)
    for path, item in paths.items():
        spec.path(path=path, operations=item["operations"], parameters=item["parameters"])


@dataclass(frozen=True)
class Built:
    """An operation as built, with its endpoint and its path's parameters, for the links."""

    endpoint: str
    operation: dict
    path_parameters: list[dict]
    produces: Mapping[str, str]

    def wanted(self) -> list[tuple[str, str]]:
        """Its required parameters, as (location, name)."""
        parameters = [*self.path_parameters, *self.operation.get("parameters", ())]
        return [(p["in"], p["name"]) for p in parameters if p.get("required") and "name" in p]


def _add_links(built: list[Built]) -> None:
    """Links from each answer that creates something (its contract ``produces``) to every operation under the
    same root that it can address: whose path it fills in, and that takes at least one produced value."""
    for source in built:
        produced = source.produces
        if not produced:
            continue
        passed = {p["name"]: f"$request.path.{p['name']}" for p in source.path_parameters}
        links = {}
        for target in built:
            wanted = target.wanted()
            if _root(target.endpoint) != _root(source.endpoint) or not any(n in produced for _, n in wanted):
                continue
            if not all(name in produced or name in passed for where, name in wanted if where == "path"):
                continue
            values = {
                f"{where}.{name}": produced.get(name) or passed[name]
                for where, name in wanted
                if name in produced or (where == "path" and name in passed)
            }
            name = ops.operation_name(target.endpoint) or target.endpoint
            links[name] = {"operationId": target.operation["operationId"], "parameters": values}
        for status, response in source.operation["responses"].items():
            if status.startswith("2") and "content" in response:
                response["links"] = links


def _describe_schemas(spec: APISpec, plugin: MarshmallowPlugin, app: Flask) -> None:
    """Each schema component described by its docstring and its ``json_schema``, the vendor's with
    their XML names; the operations a fault rule can match, by name."""
    assert plugin.converter is not None
    components = spec.components.schemas
    for key, name in plugin.converter.refs.items():
        schema_cls = key[0]
        doc = inspect.getdoc(schema_cls)
        if doc and schema_cls.__doc__:  # inherited docstrings would describe another shape
            components[name]["description"] = doc.replace("``", "`")
        components[name] |= getattr(schema_cls, "json_schema", {})
        if issubclass(schema_cls, schemas.Wire):
            components[name].setdefault("xml", {})["namespace"] = schema_cls.xml_namespace
            for field in resolve_schema_instance(schema_cls).fields.values():
                inner = getattr(field, "inner", None)
                if "xml_item" in field.metadata and isinstance(inner, fields.Nested):
                    nested = plugin.converter.refs[make_schema_key(resolve_schema_instance(inner.nested))]  # type: ignore[arg-type]
                    components[nested].setdefault("xml", {})["name"] = field.metadata["xml_item"]
    matched = components["Match"]["properties"]["operation"]
    matched["enum"] = sorted(ops.operation_names(app.view_functions, "vendor"))


def _field_attributes(app: Flask) -> Callable[..., dict]:
    """What OpenAPI says of a field beyond apispec's own reading: ``schemas.openapi_attributes``,
    the schema a field is ``read_as``, and its ``cap`` under ``app``'s configuration."""

    def attributes(converter: Any, field: fields.Field, **kwargs: Any) -> dict:
        extra = schemas.openapi_attributes(field)
        if "read_as" in field.metadata:
            extra |= converter.resolve_nested_schema(field.metadata["read_as"])
        if "cap" in field.metadata:
            extra |= field.metadata["cap"].described(app.config)
        return extra

    return attributes


def build_spec(app: Flask) -> dict:
    """The OpenAPI document of ``app``: every route of its URL map, every schema they read or write."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="MyPreferences sandbox",
        version=metadata.version("mypreferences-sandbox"),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": ops.OVERVIEW},
    )
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(_field_attributes(app))
    for name, scheme in ops.SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for shared in (ops.METHOD_NOT_ALLOWED, *ops.SERVER_ANSWERS.values(), *ops.BODY_ANSWERS.values()):
        spec.components.response(shared.name, _answer(shared.answer, shared.media_types))
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
