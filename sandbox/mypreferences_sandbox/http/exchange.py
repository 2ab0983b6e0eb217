"""Requests in, responses out: each view's contract carried out, and the one place every body is rendered.

A view is ``documented``: its body is read, negotiated and loaded as its contract says and handed
to it as ``body``; what it returns is dumped as the declared answer of its status. Success or
error, a response is written in the format the client negotiated, so a client that speaks XML
also gets its 400s, 404s and 409s in XML.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeGuard

from flask import Flask, Response, current_app, request
from marshmallow import Schema
from werkzeug.exceptions import ClientDisconnected, HTTPException

from .. import parts
from ..contract import errors, schemas
from ..contract.control_schemas import PAYLOAD_INVALID
from ..contract.operations import FORM, Answer, Contract, contract, record, route_path
from ..wire import dumping, formats
from .record import current_record

log = logging.getLogger(__name__)


# What a view may return: its answer's data, with its status (and headers) when not the first
# declared; or a response of its own (a stream).
Returned = Any
# A view's decorator: the view returns what it answers, the decorated view a response.
Documented = Callable[[Callable[..., Returned]], Callable[..., Response]]


def documented(plane: str, summary: str, answers: Mapping[int, Answer], **details: Any) -> Documented:
    """A view's contract (``contract``'s arguments), recorded on it and carried out: its body read
    and loaded (``body``), and what it returns (data, ``(data, status)`` or ``(data, status,
    headers)``) dumped through the shape its contract declares for that status."""
    declared = contract(plane, summary, answers, **details)
    loads = _loads(declared)  # decided once, by the contract, not at every request

    def carry_out(view: Callable[..., Returned]) -> Callable[..., Response]:
        @functools.wraps(view)
        def carried_out(**arguments: Any) -> Response:
            if loads:
                arguments["body"] = _loaded(declared)
            returned = view(**arguments)
            return returned if isinstance(returned, Response) else _answer(declared, returned)

        return record(carried_out, declared)

    return carry_out


def _loads(declared: Contract) -> bool:
    """Whether the contract's body is read before its view runs: one of a schema, or with a reader;
    not one with a limit of its own, which its view reads as it arrives (a state import), nor a
    form, which its view reads to answer in the form's own terms (OAuth's token request)."""
    body = declared.body
    if body is None or declared.body_limit != "MAX_CONTENT_LENGTH" or body.media_types == FORM:
        return False
    return body.reader is not None or _is_schema(body.shape)


def _loaded(declared: Contract) -> Any:
    """This request's body, read and loaded as its contract says; None for an optional body left out."""
    body = declared.body
    assert body is not None  # _loads said so
    schema = _instance(body.shape) if _is_schema(body.shape) else None
    if body.reader is not None:
        return body.reader(schema)
    assert schema is not None  # _loads said so
    if declared.plane != "vendor":
        return schemas.load(schema, json_payload(), message=PAYLOAD_INVALID)
    if not body.required and not request.get_data(cache=True).strip():  # whatever its framing
        return None
    if formats.is_xml(request.mimetype) and not any(formats.is_xml(kind) for kind in body.media_types):
        # The vendor's help pages list JSON media types only for these operations.
        raise errors.UnsupportedMediaType(
            f"The request entity's media type '{request.mimetype}' is not supported for this resource."
        )
    return schemas.load(schema, read(schema, body.root or type(schema).__name__).data)


def json_payload() -> Any:
    """The JSON body of a control call ({} when empty), whatever its Content-Type; 400 if not JSON."""
    raw = request.get_data(cache=True)
    return formats.parse_json(raw, current_app.config["MAX_NESTING_DEPTH"]) if raw.strip() else {}


def _answer(declared: Contract, returned: Returned) -> Response:
    """What a view returned, as its contract's answer of that status declares it."""
    data, status, headers = (
        returned
        if isinstance(returned, tuple) and len(returned) == 3
        else (*_paired(declared, returned), None)
    )
    if data is None:
        return Response(status=status, headers=dict(headers or {}))
    many = isinstance(data, list)
    dumped_as = _dumped_as(declared.answers[status].shape, many)
    if declared.plane == "vendor":
        assert dumped_as is not None  # every vendor answer with a body has its schema
        schema, root, item = dumped_as
        return respond(data, _instance(schema), root, status, headers, item)
    # The sandbox's own answers: JSON, through their schema where they have one.
    dumped = data if dumped_as is None else dumping.dump(_instance(dumped_as[0]), data, many=many)
    return json_response(dumped, status, headers)


def _paired(declared: Contract, returned: Returned) -> tuple[Any, int]:
    if isinstance(returned, tuple):
        return returned[0], returned[1]
    return returned, next(iter(declared.answers))


def _dumped_as(shape: Any, many: bool) -> tuple[type[Schema], str, str] | None:
    """The schema an answer's shape dumps through, with its XML root and item names: a schema (its
    name is its root), a list of one (wrapped in the XML element its ``xml`` names), or, of
    ``oneOf``, the one that fits data of one or of a list; None for a shape of no schema."""
    if _is_schema(shape):
        return shape, shape.__name__, ""
    if not isinstance(shape, Mapping):
        return None
    if "oneOf" in shape:
        return _dumped_as(next(one for one in shape["oneOf"] if _is_schema(one) != many), many)
    entry = shape.get("items")
    if not _is_schema(entry):
        return None
    return entry, shape.get("xml", {}).get("name", ""), entry.__name__


def _is_schema(shape: Any) -> TypeGuard[type[Schema]]:
    return isinstance(shape, type) and issubclass(shape, Schema)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """One instance of each schema class, made once: marshmallow schemas keep no state per call."""
    return schema()


def body_stream() -> Any:
    """This request's body, to read as it arrives: werkzeug's stream for a declared length (it
    ends there, and a declared length over the limit is a 413), the bounded one ``ChunkedLimit``
    made for a chunked body (werkzeug's would end quietly at the limit)."""
    return request.stream if request.content_length is not None else request.environ["wsgi.input"]


def response_type() -> str:
    """The negotiated media type of this request's response (406 if none can satisfy Accept)."""
    record = current_record()
    if record.response_type is None:
        record.response_type = formats.negotiate(request.accept_mimetypes, request.mimetype)
    return record.response_type


def read(schema: Schema | None, root: str) -> formats.Body:
    """This request's body, parsed as ``schema`` describes; ``root`` is its XML root element
    (without a schema: a JSON Patch document, read as JSON only). Its warnings go on the request's
    record at once, so that they reach the client even when validation then refuses the body."""
    body = formats.read_body(
        request.get_data(cache=True),  # kept for the journal
        request.mimetype,
        request.mimetype_params.get("charset"),
        schema,
        root,
        current_app.config["MAX_NESTING_DEPTH"],
    )
    record = current_record()
    record.warnings.extend(body.warnings)
    if body.document is not None:
        record.body_form = (body.document, None)
    return body


def respond(
    data: Mapping | list,
    schema: Schema,
    root: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    item: str = "",
) -> Response:
    """``data`` (one object, or a list whose XML entries are named ``item``) dumped through
    ``schema`` and rendered in the negotiated format."""
    media_type = response_type()
    # Compiled from the schema, which stays the one description of the contract (see dumping).
    dumped = dumping.dump(schema, data, many=isinstance(data, list))
    return _response(formats.render(dumped, media_type, schema, root, item), status, media_type, headers)


def _response(body: bytes, status: int, media_type: str, headers: Mapping[str, str] | None) -> Response:
    response = Response(body, status, headers=dict(headers or {}))
    response.content_type = f"{media_type}; charset=utf-8"
    return response


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``data`` as a JSON response: the sandbox's own answers (control plane, OAuth, documents)."""
    return Response(
        json.dumps(data, ensure_ascii=False), status, headers=dict(headers or {}), mimetype="application/json"
    )


def streamed_json(data: Mapping[str, Any], status: int = 200) -> Response:
    """``data`` as a JSON response written while it is read: an iterator in it (a store's profiles,
    read lazily) becomes an array, each item encoded alone, sent about 64 KiB at a time."""
    return Response(_batched(_pieces(data)), status, mimetype="application/json")


def _pieces(value: Any) -> Iterator[str]:
    """The JSON text of ``value``, in pieces; encoded as ``json_response`` encodes."""
    if isinstance(value, Mapping):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield (", " if index else "") + json.dumps(str(key), ensure_ascii=False) + ": "
            yield from _pieces(item)
        yield "}"
    elif isinstance(value, Iterator):
        yield "["
        for index, item in enumerate(value):
            yield (", " if index else "") + json.dumps(item, ensure_ascii=False)
        yield "]"
    else:
        yield json.dumps(value, ensure_ascii=False)


def _batched(pieces: Iterable[str], size: int = 65536) -> Iterator[bytes]:
    batch: list[str] = []
    length = 0
    for piece in pieces:
        batch.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(batch).encode()
            batch, length = [], 0
    yield "".join(batch).encode()


def render_error(error: errors.VendorError) -> Response:
    """The vendor's error document in the negotiated format (JSON if negotiation itself failed)."""
    record = current_record()
    # ASP.NET Core stops at 200 model errors: a body of a million empty entries answers in bounds.
    body = error.body(current_app.config["MAX_MODEL_ERRORS"])
    record.error = {"status": error.status, **body}
    if error.conflict is not None:  # an injected error that replaces a 409 keeps its conflict
        record.conflict = error.conflict
    try:
        media_type = response_type()
    except errors.NotAcceptable:
        media_type = "application/json"
    return _response(formats.render(body, media_type), error.status, media_type, error.headers)


def _vendor_error(error: HTTPException) -> errors.VendorError:
    """Werkzeug's routing and body-limit errors, as the vendor's stack words them."""
    if error.code == 404:
        return errors.NotFound(
            f"No HTTP resource was found that matches the request URI '{request.url}'.",
            message_detail=f"The sandbox serves: {'; '.join(served_routes())}.",
        )
    if error.code == 405:
        # Sorted: werkzeug gives a set, whose order differs between processes (and replicas).
        allow = {"Allow": ", ".join(sorted(error.valid_methods or ()))}  # type: ignore[attr-defined]
        return errors.MethodNotAllowed(
            f"The requested resource does not support http method '{request.method}'.",
            headers=allow,
        )
    if isinstance(error, ClientDisconnected):
        return errors.BadRequest(model_state={"body": ["The body ended before its declared length."]})
    if error.code == 413:
        # The limit this request had (an import has its own); a 413 comes only where one applies.
        return errors.PayloadTooLarge.over(
            request.max_content_length or current_app.config["MAX_CONTENT_LENGTH"]
        )
    return errors.VendorError(error.description, status=error.code)


def served_routes() -> list[str]:
    """Every route of the app, as ``METHODS /path/{parameter}``, for a newcomer who got lost."""
    routes = set()
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        # Flask gives every rule its methods; werkzeug's Rule types them optional.
        methods = ",".join(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        routes.add(f"{methods} {route_path(rule.rule)}")
    # By path, then by methods: a set's order differs between processes, which a shared store
    # makes one sandbox.
    return sorted(routes, key=lambda route: (route.split(" ", 1)[1], route))


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return render_error(errors.VendorError())


def _store_error(error: Exception) -> Response:
    if not parts.unreachable(error):
        return _unexpected(error)
    log.error("Redis cannot be reached (answered 503): %s", error)
    current_record().unreachable = True
    return render_error(errors.Unavailable())


def init_app(app: Flask) -> None:
    """Render every error ``app`` raises as the vendor would; its store out of reach, a 503."""
    app.register_error_handler(errors.VendorError, render_error)
    for store_error in parts.store_errors(app.config):
        app.register_error_handler(store_error, _store_error)
    app.register_error_handler(HTTPException, lambda error: render_error(_vendor_error(error)))
    app.register_error_handler(Exception, _unexpected)
