"""The gevent worker's deadline for a request's body: a late body is answered 408 on the socket."""

from __future__ import annotations

import errno
import io
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import gevent  # type: ignore[import-untyped]
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected

from ..contract.errors import PayloadTooLarge, VendorError
from ..turns import pace
from .connection import client_socket
from .limits import Refused, read_at_most

# How long a connection cut by the body timeout is read from, after its 408, before it is closed:
# so that the client can read the answer rather than a reset.
LINGER_SECONDS = 1.0


WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class BodyDeadline:
    """WSGI middleware (gevent worker): reads each request's whole body before the application
    sees it, within ``seconds`` of its head. A body that is late is answered 408 on the socket, and
    the connection closed; the application never sees that request (nor does the journal).

    A body declared larger than its limit (``limit_of`` its path: SANDBOX_MAX_CONTENT_LENGTH, or
    its operation's own) is not read: the application answers 413 without reading it. A chunked
    one is read up to one byte more than the limit, which is enough for the application to answer
    413. A body that ends before its declared length reaches the application as cut short, which
    answers 400. A body its view reads as it arrives (``streamed``: a state import, which may take
    long to upload) is left to the view, with no deadline."""

    def __init__(
        self,
        app: WSGIApp,
        seconds: float,
        limit_of: Callable[[str], int],
        streamed: Callable[[str], bool],
        log_format: str,
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.limit_of = limit_of
        self.streamed = streamed
        self.log_format = log_format

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        limit = self.limit_of(path)
        if int(environ.get("CONTENT_LENGTH") or 0) > limit:
            # Answered here, and the connection ended: answered by the application, the body
            # would then be read to its end, to keep the connection, by gunicorn, at the speed the
            # client sends it and without a turn for anyone else (326 MB: 9 s).
            self._refuse(environ, time.perf_counter(), PayloadTooLarge.over(limit))
        wanted = 0 if self.streamed(path) else self._wanted(environ, limit)
        if wanted:
            started = time.perf_counter()
            body = None
            try:
                with gevent.Timeout(self.seconds, False):  # False: on time-out, leave the block quietly
                    body = read_at_most(environ["wsgi.input"], wanted)
            except (OSError, ParseException):  # a chunked body cut short, or a broken chunk
                environ["wsgi.input"] = Refused(ClientDisconnected)
                return self.app(environ, start_response)
            if body is None:
                message = f"The request body did not arrive within {self.seconds:g} seconds."
                self._refuse(environ, started, VendorError(message, status=408))
            environ["wsgi.input"] = io.BytesIO(body)
            if environ.get("CONTENT_LENGTH") and len(body) < wanted:
                # Not a stream gunicorn ended: werkzeug then reads it up to its declared length,
                # finds it short, and the application answers 400.
                environ.pop("wsgi.input_terminated", None)
        return self.app(environ, start_response)

    @staticmethod
    def _wanted(environ: dict, limit: int) -> int:
        """How many bytes of body to read first: the declared length (within ``limit``), or for
        a chunked body one more than ``limit``; 0 for none."""
        declared = environ.get("CONTENT_LENGTH")
        if declared:
            return int(declared)  # gunicorn has checked it is a number
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return limit + 1
        return 0

    def _refuse(self, environ: dict, started: float, error: VendorError) -> None:
        """Answer ``error`` on the socket, let the client read it, then end the connection
        (gunicorn closes it quietly on a reset, as it does after a connection fault)."""
        status = error.status
        body = json.dumps(error.body()).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        self._log(environ, started, status)
        sock = client_socket(environ)
        if sock is not None:
            _answer_and_linger(sock, head + body)
        raise ConnectionResetError(errno.ECONNRESET, f"request refused: {status}")

    def _log(self, environ: dict, started: float, status: int) -> None:
        """The one log line of the request, as the application's pipeline writes it."""
        fields = {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": status,
            "durationMs": (time.perf_counter() - started) * 1000,
            "clientId": None,
            "fault": None,
        }
        log = logging.getLogger("mypreferences_sandbox.requests")
        if self.log_format == "json":
            log.info(json.dumps(fields))
        else:
            log.info(
                "%s %s %d %.1fms client=- fault=-",
                fields["method"],
                fields["path"],
                status,
                fields["durationMs"],
            )


def _answer_and_linger(sock: socket.socket, data: bytes) -> None:
    """Send ``data``, end the sending side, and read what the client still sends (for at most
    LINGER_SECONDS), so that closing does not reset the connection before the client reads."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER_SECONDS)
        deadline = time.monotonic() + LINGER_SECONDS
        while time.monotonic() < deadline and sock.recv(65536):
            pace()  # a client sending fast is read without waiting: give the others turns
    except OSError:  # the client left first, or kept sending past the linger: nothing more to do
        pass
