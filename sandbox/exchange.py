"""Requests in, responses out: body reading, negotiation, and the one place every body is rendered.

Success or error, a response is written in the format the client negotiated, so a client that
speaks XML also gets its 400s, 404s and 409s in XML.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from marshmallow import Schema
from werkzeug.exceptions import ClientDisconnected, HTTPException

from . import dumping, errors, formats, parts
from .contract import route_path
from .record import current_record

log = logging.getLogger(__name__)


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
        allow = {"Allow": ", ".join(error.valid_methods or ())}  # type: ignore[attr-defined]
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
