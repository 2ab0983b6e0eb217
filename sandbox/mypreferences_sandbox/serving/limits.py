"""Request bodies bounded before the view reads them: a chunked body's limit, and each operation's own."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from ..contract.operations import contract_of

BODY_LIMITS = "sandbox.body_limits"


def install(app: Flask) -> None:
    """Bound ``app``'s chunked bodies (once its blueprints are registered), each path to its
    operation's limit: what reads a body before routing needs it by path."""
    app.extensions[BODY_LIMITS] = {
        rule.rule: app.config[found.body_limit]
        for rule in app.url_map.iter_rules()
        if (found := contract_of(app.view_functions[rule.endpoint])) is not None
        and found.body_limit != "MAX_CONTENT_LENGTH"
    }
    app.wsgi_app = ChunkedLimit(  # type: ignore[method-assign]
        app.wsgi_app, functools.partial(body_limit, app), functools.partial(streams_body, app)
    )


def body_limit(app: Flask, path: str) -> int:
    """The most bytes a request body to ``path`` may hold: SANDBOX_MAX_CONTENT_LENGTH, or the
    limit its operation's contract names."""
    # An app without the pipeline (the benchmark's bare route) has the one limit.
    limits = app.extensions.get(BODY_LIMITS, {})
    return limits.get(path, app.config["MAX_CONTENT_LENGTH"])  # type: ignore[no-any-return]


def streams_body(app: Flask, path: str) -> bool:
    """Whether the view of ``path`` reads its request body as it arrives (``body_stream``), rather
    than whole once it has arrived: an operation with a body limit of its own (a state import)."""
    return path in app.extensions.get(BODY_LIMITS, {})


class ChunkedLimit:
    """WSGI middleware: a chunked body (no declared length) is read up to one byte past its limit
    (``limit_of`` its path); one over it is answered 413 when read, as a declared one is. Without
    it, werkzeug's stream stops quietly at the limit, and a cut body would be parsed. A body its
    view reads as it arrives (``streamed`` by path: a state import) is not read first, but bounded
    as it is read."""

    def __init__(self, app: Any, limit_of: Callable[[str], int], streamed: Callable[[str], bool]) -> None:
        self.app = app
        self.limit_of = limit_of
        self.streamed = streamed

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            limit = self.limit_of(environ.get("PATH_INFO", ""))
            if self.streamed(environ.get("PATH_INFO", "")):
                environ["wsgi.input"] = Bounded(environ["wsgi.input"], limit)
                return self.app(environ, start_response)
            try:
                body = read_at_most(environ["wsgi.input"], limit + 1)
            except (OSError, ValueError, ClientDisconnected):  # a broken chunk, or the client gone mid-body
                environ["wsgi.input"] = Refused(ClientDisconnected)
            else:
                environ["wsgi.input"] = (
                    io.BytesIO(body) if len(body) <= limit else Refused(RequestEntityTooLarge)
                )
        return self.app(environ, start_response)


class Bounded(io.RawIOBase):
    """A chunked body read as it arrives: more than ``limit`` bytes is a 413; one that cannot be
    read (a broken chunk, a client gone) is a 400, as a body cut short is."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream = stream
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.stream.read(len(buffer))
        except Exception as error:  # each server has its own for a broken chunk (OSError, gunicorn's)
            raise ClientDisconnected() from error
        if len(data) > self.left:
            raise RequestEntityTooLarge()
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class Refused(io.RawIOBase):
    """The body of a chunked request that cannot be read whole: reading it raises ``error``
    (413 for one over the limit, 400 for one cut short), which the application answers."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self.error()


def read_at_most(stream: Any, wanted: int) -> bytes:
    """Up to ``wanted`` bytes of ``stream``, fewer only at its end."""
    chunks, got = [], 0
    while got < wanted:
        chunk = stream.read(min(wanted - got, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
