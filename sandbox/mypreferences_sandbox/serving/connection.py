"""Connection-level faults, carried out on the client's real socket.

The WSGI servers the sandbox runs under (werkzeug's and gunicorn's) hand the application the
client socket in the environ. A fault writes to it (or not) and closes it itself, then raises
``ConnectionResetError`` so that the server neither writes a response nor logs an error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask

from ..http.record import ENVIRON_KEY, RequestRecord

SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")

StartResponse = Callable[..., Any]


def client_socket(environ: dict) -> socket.socket | None:
    """The client's socket, where the server exposes it."""
    return next((environ[key] for key in SOCKET_KEYS if key in environ), None)


def carry_out(
    fault: dict,
    environ: dict,
    start_response: StartResponse,
    status: str,
    headers: list[tuple[str, str]],
    body: bytes,
    noise: bytes,
    cap: float,
) -> Iterable[bytes]:
    """Deliver the response ``status``/``headers``/``body`` as ``fault`` says (a WSGI result)."""
    kind = fault["type"]
    if kind == "DRIBBLE":
        start_response(status, headers)
        return _dribble(body, fault["chunks"], min(fault["duration"] / 1000, cap))
    sock = client_socket(environ)
    if sock is None:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"Connection faults need a real HTTP server (werkzeug or gunicorn)."]
    if kind == "CONNECTION_RESET_BY_PEER":
        _close(sock, reset=True)
    elif kind == "EMPTY_RESPONSE":
        _close(sock)
    elif kind == "RANDOM_DATA_THEN_CLOSE":
        _send_then_close(sock, noise[:64])
    elif kind == "MALFORMED_RESPONSE_CHUNK":
        kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
        head = _head(status, [*kept, ("Transfer-Encoding", "chunked")])
        _send_then_close(sock, head + b"zz\r\n" + noise[:16])  # "zz" is not a chunk size
    elif kind == "TRUNCATED_RESPONSE":
        promised = max(len(body), 1)
        kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
        _send_then_close(
            sock, _head(status, [*kept, ("Content-Length", str(promised))]) + body[: len(body) // 2]
        )
    elif kind == "HANG":
        _wait_for_hangup(sock, min(fault["duration"] / 1000, cap))
        _close(sock)
    raise ConnectionResetError(errno.ECONNRESET, f"sandbox fault {kind}")


def _head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _dribble(body: bytes, chunks: int, duration: float) -> Iterator[bytes]:
    size = -(-len(body) // chunks) or 1
    pieces = [body[start : start + size] for start in range(0, len(body), size)] or [b""]
    for index, piece in enumerate(pieces):
        if index:
            time.sleep(duration / max(len(pieces) - 1, 1))
        yield piece


def _send_then_close(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the client left first: nothing more to break
        sock.sendall(data)
    _close(sock)


def _wait_for_hangup(sock: socket.socket, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early once the client closes its end. Whatever else the
    client sends meanwhile is read and dropped, so that it cannot keep the wait busy."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, 0.05))
        if readable:
            try:
                if not sock.recv(65536):
                    return
            except OSError:
                return


def _close(sock: socket.socket, *, reset: bool = False) -> None:
    """Close the connection now: with a TCP RST when ``reset``, else with a FIN and no bytes.

    The server still holds the socket object and will read from it once more. Its descriptor is
    therefore not closed but replaced (``dup2``, which closes the connection) by one end of a
    socket pair whose other end is gone: the server then reads an orderly end of stream, and
    closes that end itself, with no error and no leak."""
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        with contextlib.suppress(OSError):  # already gone
            sock.shutdown(socket.SHUT_RDWR)
    stand_in, gone = socket.socketpair()
    gone.close()
    os.dup2(stand_in.fileno(), sock.fileno())
    stand_in.close()


class ConnectionFaults:
    """WSGI middleware: starts each request's record, and carries out the connection fault that a
    rule left on it once the application has answered."""

    def __init__(self, app: Any, cap_ms: int) -> None:
        self.app = app
        self.cap = cap_ms / 1000

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        record = environ[ENVIRON_KEY] = RequestRecord()
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        result = self.app(environ, capture)
        firing = record.firing
        if firing is None or "fault" not in firing.spec:
            start_response(captured["status"], captured["headers"])
            return result
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        status, headers = captured["status"], captured["headers"]
        return carry_out(
            firing.spec["fault"], environ, start_response, status, headers, body, firing.noise, self.cap
        )


def install(app: Flask) -> None:
    """Serve ``app`` through ``ConnectionFaults``, outermost: it starts each request's record."""
    app.wsgi_app = ConnectionFaults(app.wsgi_app, app.config["MAX_DELAY_MS"])  # type: ignore[method-assign]
