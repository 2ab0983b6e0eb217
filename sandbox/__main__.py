"""The command line: ``mypreferences-sandbox`` (or ``python -m sandbox``) serves the sandbox with gunicorn.

The in-memory store lives in one process, so gunicorn runs one worker; with a Redis store
(``--store redis://...``) it may run several, which share the state. Each worker is gevent's: every
connection is a greenlet, so idle connections, slow clients and injected hangs cost a socket each,
not a thread, and the others keep answering (docs/cli.md, measured in docs/performance.md). Limits
bound what a client may hold: connections at once, the time to send a request head, and the time
to send its body. The app, and so the in-memory seed, is made in the worker only: the master checks
the settings (and loads a seed into a shared store, once), binds the socket and forks.
"""

from __future__ import annotations

import argparse
import errno
import functools
import gc
import io
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import gevent  # type: ignore[import-untyped]
from flask import Flask
from gevent import monkey  # type: ignore[import-untyped]
from gunicorn.app.base import BaseApplication
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected

from . import __version__
from .app import SEEDED, create_app
from .connection import client_socket
from .errors import PayloadTooLarge, VendorError
from .parts import AFTER_IMPORT, EXTENSION, store_errors
from .pipeline import Refused, body_limit, read_at_most, streams_body
from .settings import SETTINGS, unknown_variables
from .turns import pace

PROG = "mypreferences-sandbox"
# Queued connections the kernel holds for the worker to accept (capped by net.core.somaxconn).
BACKLOG = 2048
# Descriptors kept for everything but client connections: the listening socket, pipes, logs, the
# socket pairs of connection faults.
RESERVED_DESCRIPTORS = 64
# How long a connection cut by the body timeout is read from, after its 408, before it is closed:
# so that the client can read the answer rather than a reset.
LINGER_SECONDS = 1.0
# The collector's thresholds in the worker (gen0 allocations, then gen1 and gen2 collections), set
# after start-up has been frozen out of its reach: see docs/performance.md, "Garbage collection".
GC_THRESHOLDS = (10_000, 10, 10)
# Addresses that mean "every address": where the sandbox listens, but not where to reach it, so the
# URL it prints names the loopback address of the same family instead.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the server (docs/cli.md, "Limits")."""

    max_connections: int = 4096  # open at once; more wait in the listen backlog
    header_timeout: int = 5  # seconds to deliver a whole request head (and idle keep-alive)
    body_timeout: int = 10  # seconds to deliver a whole request body, after its head; then 408


def port(text: str) -> int:
    """A TCP port, 0 to 65535, for argparse (which reports a ValueError in one line)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def positive(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def nonempty(value: str) -> str:
    """Text of at least one character, for argparse (an unset shell variable expands to none)."""
    if not value:
        raise ValueError(value)
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options; each defaults to its ``SANDBOX_*`` environment variable."""
    settings = "\n".join(
        f"  SANDBOX_{name:<22} {json.dumps(default):<10} {meaning}"
        for name, (default, meaning) in SETTINGS.items()
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a local, in-memory stand-in for the MyPreferences Profile API.",
        epilog=f"Every setting is also a SANDBOX_* environment variable (JSON where it parses):\n{settings}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    defaults = Limits()
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--host",
        default=env("SANDBOX_HOST", "127.0.0.1"),
        help="address to listen on (SANDBOX_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=port,
        help="port; 0 picks a free one (SANDBOX_PORT, default 8080)",
    )
    parser.add_argument(
        "--max-connections",
        type=positive,
        help="connections served at once, idle ones, delays and hangs included; more wait to be "
        f"accepted (SANDBOX_MAX_CONNECTIONS, default {defaults.max_connections})",
    )
    parser.add_argument(
        "--header-timeout",
        type=positive,
        help="seconds a connection has to send a whole request head, from its opening or its "
        "previous answer; then it is closed unanswered, so this is also how long an idle "
        f"connection is kept (SANDBOX_HEADER_TIMEOUT, default {defaults.header_timeout})",
    )
    parser.add_argument(
        "--body-timeout",
        type=positive,
        help="seconds a request has to send its whole body, after its head; then it is answered "
        f"408 and closed (SANDBOX_BODY_TIMEOUT, default {defaults.body_timeout})",
    )
    parser.add_argument(
        "--threads",
        type=positive,
        help="ignored, kept so that older command lines still start: the server has no thread "
        "pool any more (see --max-connections) (SANDBOX_THREADS)",
    )
    parser.add_argument(
        "--store",
        default=env("SANDBOX_STORE"),
        help="where the state is kept: memory (the default: one process), or the URL of a Redis "
        "that many workers and sandboxes share, redis://HOST:PORT/DB (SANDBOX_STORE)",
    )
    parser.add_argument(
        "--workers",
        type=positive,
        help="worker processes; more than one needs a Redis store (SANDBOX_WORKERS, default 1)",
    )
    parser.add_argument(
        "--seed-file",
        default=env("SANDBOX_SEED_FILE"),
        help="state document to load at start-up (SANDBOX_SEED_FILE)",
    )
    parser.add_argument(
        "--auth-mode",
        default=env("SANDBOX_AUTH_MODE"),
        choices=["off", "lenient", "strict"],
        help="authentication (SANDBOX_AUTH_MODE, default lenient)",
    )
    parser.add_argument(
        "--auth-file",
        type=nonempty,
        help="strict mode's clients, users, secrets and permissions, as JSON (SANDBOX_AUTH_FILE)",
    )
    parser.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        help="the control plane under /_sandbox; --no-control turns it off, but for its health check "
        "(SANDBOX_CONTROL, default on)",
    )
    parser.add_argument(
        "--control-token",
        type=nonempty,
        help="bearer token every control call but health must carry; other users of this machine "
        "can read a command line, so prefer the variable for a real secret (SANDBOX_CONTROL_TOKEN)",
    )
    parser.add_argument(
        "--log-format",
        default=env("SANDBOX_LOG_FORMAT"),
        choices=["text", "json"],
        help="one line per request, as text or JSON (SANDBOX_LOG_FORMAT, default text)",
    )
    args = parser.parse_args(argv)
    # Read here rather than as argparse defaults, which it would refuse naming the option, when the
    # unreadable value is the variable's.
    fallbacks: dict[str, tuple[str, Callable[[str], int], str | None]] = {
        "port": ("SANDBOX_PORT", port, "8080"),
        "max_connections": ("SANDBOX_MAX_CONNECTIONS", positive, str(defaults.max_connections)),
        "header_timeout": ("SANDBOX_HEADER_TIMEOUT", positive, str(defaults.header_timeout)),
        "body_timeout": ("SANDBOX_BODY_TIMEOUT", positive, str(defaults.body_timeout)),
        "threads": ("SANDBOX_THREADS", positive, None),
        "workers": ("SANDBOX_WORKERS", positive, "1"),
    }
    for dest, (name, read, fallback) in fallbacks.items():
        text = env(name, fallback)
        if getattr(args, dest) is None and text is not None:
            try:
                setattr(args, dest, read(text))
            except ValueError:
                parser.error(f"{name}: invalid {read.__name__} value: {text!r}")
    return args


def cooperative() -> None:
    """Make blocking calls cooperative (gevent's monkey-patching): sockets, ``select``, ``sleep``,
    locks and threads. Called before the app is created, so that the locks of its store, journal
    and fault registry are gevent's too; gunicorn's gevent worker patches again (idempotent)."""
    monkey.patch_all()


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
        log = logging.getLogger("sandbox.requests")
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


class Stamped(logging.Formatter):
    """Log lines stamped with the time they were written, in UTC to the millisecond (ISO 8601): the
    first field of a text line, the first member (``time``) of a JSON request line."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    @staticmethod
    def converter(seconds: float | None, /) -> time.struct_time:
        """UTC, whatever the machine's time zone."""
        return time.gmtime(seconds)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        stamp = self.formatTime(record)
        if record.name == "sandbox.requests" and line.startswith("{"):
            # The pipeline's JSON line is an object already: the member goes in front of the others,
            # which are not parsed again for it.
            return f'{{"time": "{stamp}", {line[1:]}'
        return f"{stamp} {line}"


def store_shown(store: str) -> str:
    """``SANDBOX_STORE`` as it may be printed: a Redis URL without its password, wherever it is."""
    if store == "memory":
        return store
    split = urlsplit(store)
    netloc = split.netloc
    if split.password is not None:
        netloc = f"{split.username or ''}:***@{netloc.rpartition('@')[2]}"
    # redis-py also takes the password as a query parameter.
    query = "&".join(
        "password=***" if pair.partition("=")[0] == "password" else pair
        for pair in split.query.split("&")
        if pair
    )
    # Joined by hand: urlunsplit drops the "//" of an empty host (unix:///path).
    return f"{split.scheme}://{netloc}{split.path}" + (f"?{query}" if query else "")


def summary(app: Flask, workers: int, seed_file: str | None, everywhere: str | None) -> str:
    """The settings that matter, in one line: where it listens (if on every address), the store, the
    workers, authentication, the control plane, and what the seed put in the store."""
    config = app.config
    if not config["CONTROL"]:
        control = "off"
    else:
        control = "on (locked by a token)" if config["CONTROL_TOKEN"] is not None else "on (no token)"
    said = [
        f"store {store_shown(config['STORE'])}",
        f"{workers} worker{'s' if workers > 1 else ''}",
        f"auth {config['AUTH_MODE']}",
        f"control plane {control}",
    ]
    if everywhere is not None:
        said.insert(0, f"listening on all addresses ({everywhere})")
    if seed_file is None:
        said.append("no seed file")
    else:
        said.append(f"seed {seed_file} ({_held(app)})")
    return ", ".join(said)


def _held(app: Flask) -> str:
    """How many profiles ``app``'s store holds (with a shared store, other sandboxes' too)."""
    if app.config["STORE"] == "memory":
        # The app's own store holds what its seed imported: known without reading every profile.
        held = app.extensions.get(SEEDED, 0)
        return f"{held} profile{'s' if held != 1 else ''}"
    try:
        held = sum(1 for profiles in app.extensions[EXTENSION].store.export().values() for _ in profiles)
    except store_errors(app.config):
        # A summary never stops the server: Redis may be back by the first request.
        return "the shared store cannot be reached to count its profiles"
    return f"{held} profile{'s' if held != 1 else ''} in the shared store"


def settle() -> None:
    """Freeze what start-up built (the app, the seed) out of the garbage collector's reach."""
    # Collected first, so that start-up's garbage is freed rather than frozen with the rest.
    gc.collect()
    gc.freeze()
    # After the freeze, so that the new thresholds count from a clean slate.
    gc.set_threshold(*GC_THRESHOLDS)


def settle_import() -> None:
    """Freeze what an import built out of the collector's reach, as start-up's is: a full
    collection visits every object tracked, and an import of 200,000 profiles adds as many (the
    store's map nodes), which each later full collection would visit again, the server waiting."""
    # The young generations only: a full collection now would be the very pause this avoids.
    gc.collect(1)
    gc.freeze()


class Server(BaseApplication):
    """gunicorn serving an app on an already-bound socket, with ``workers`` workers (one but for a
    shared store).

    ``app`` is the app, or the factory that makes it in the worker, as the command line gives
    it: the master then never holds the seed, which a fork would copy page by page as the
    worker's collector and reference counts touch it. The worker's garbage collector starts
    with the app frozen (``settle``). The command line's worker is gevent's (``cooperative()``
    must have been called before an app given ready-made was made). The benchmark also runs the
    former one, ``gthread`` with ``threads`` threads, and ``sync``, for comparison. ``summary``, if
    given, says in a line after the URL what the served app was made with."""

    def __init__(
        self,
        app: Flask | Callable[[], Flask],
        sock: socket.socket,
        url: str,
        limits: Limits | None = None,
        worker_class: str = "gevent",
        threads: int = 1,
        workers: int = 1,
        summary: Callable[[Flask], str] | None = None,
    ) -> None:
        self.app_or_factory = app
        self.url = url
        self.summary = summary
        self.served: Flask | None = None
        self.limits = limits = limits or Limits()
        self.gevent = gevent = worker_class == "gevent"
        # A worker that cannot make the app (an unusable seed file) writes here before it asks the
        # master to stop, so that the master exits 2, as for any other unusable setting.
        self._refused, self._refusing = os.pipe()
        self.options = {
            "bind": [f"fd://{sock.fileno()}"],
            "workers": workers,
            "worker_class": worker_class,
            "threads": threads,
            "worker_connections": limits.max_connections,
            # The gevent worker bounds the wait for each request head (the first one too) by its
            # keep-alive time; other workers keep gunicorn's default.
            "keepalive": limits.header_timeout if gevent else 2,
            # Stop within a second: in-flight requests get one second to finish.
            "graceful_timeout": 1,
            # Never kill the worker for a missed heartbeat: a gevent worker misses it while one
            # request computes (a large export), and a new worker would start with the store as
            # it was at start-up, every later write lost.
            "timeout": 0,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "control_socket_disable": True,
            "post_worker_init": self._ready,
            "on_exit": self._on_exit,
            # Handed back to the collector as the worker exits: frozen objects outlive the modules'
            # teardown at interpreter exit, and a logging handler freed that late fails on a module
            # already gone (a traceback on stderr).
            "worker_exit": lambda arbiter, worker: gc.unfreeze(),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        """The application, made here, in the worker, when a factory was given."""
        given = self.app_or_factory
        app = self.served = given if isinstance(given, Flask) else self._make(given)
        settle()
        app.extensions[AFTER_IMPORT] = settle_import
        if not self.gevent:
            return app
        config = app.config
        limit_of, streamed = functools.partial(body_limit, app), functools.partial(streams_body, app)
        return BodyDeadline(app, self.limits.body_timeout, limit_of, streamed, config["LOG_FORMAT"])

    def _ready(self, worker: Any) -> None:
        """Say where the sandbox serves, and with what, once its first worker accepts connections
        (once, not once per worker: gunicorn numbers its workers from 1)."""
        if worker.age != 1:
            return
        print(f"{PROG} serving on {self.url}", flush=True)
        if self.summary is not None and self.served is not None:
            print(f"{PROG}: {self.summary(self.served)}", flush=True)

    def _make(self, factory: Callable[[], Flask]) -> Flask:
        """Call ``factory``; if it refuses its settings, say why in one line and stop the master."""
        try:
            return factory()
        except ValueError as error:
            print(f"{PROG}: {error}", file=sys.stderr, flush=True)
            os.write(self._refusing, b"!")
            os.kill(os.getppid(), signal.SIGTERM)
            # Exit 0: gunicorn would log a worker's non-zero exit, and could start another.
            raise SystemExit(0) from None

    def _on_exit(self, arbiter: object) -> None:
        """The master's last step: exit 2 if its worker refused the settings."""
        os.set_blocking(self._refused, False)
        try:
            refused = os.read(self._refused, 1)
        except BlockingIOError:
            refused = b""
        if refused:
            raise SystemExit(2)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (port 0: a free one), inheritable by gunicorn's worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    sock.set_inheritable(True)
    return sock


def descriptors_for(connections: int) -> int:
    """Raise this process's limit on open files (up to its hard limit) so that ``connections``
    fit, and return how many do: each connection takes a descriptor, and a few are kept aside."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - RESERVED_DESCRIPTORS))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM or SIGINT; print its URL, then a summary of its settings, once
    it accepts connections."""
    args = parse_args(argv)
    for line in unknown_variables(os.environ):
        print(f"{PROG}: {line}", file=sys.stderr)
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("SEED_FILE", args.seed_file),
            ("AUTH_MODE", args.auth_mode),
            ("AUTH_FILE", args.auth_file),
            ("CONTROL", args.control),
            ("CONTROL_TOKEN", args.control_token),
            ("LOG_FORMAT", args.log_format),
            ("STORE", args.store),
        )
        if value is not None
    }
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(Stamped())
    logging.basicConfig(level=logging.INFO, handlers=[stderr])
    cooperative()
    # A one-line error for each of these; a Redis store adds its unreachable Redis (when seeded).
    refusals: tuple[type[Exception], ...] = (ValueError, OSError)
    try:
        # Every setting but the seed is checked here, before the fork, by an app made and dropped
        # (a few milliseconds): the worker makes the one that serves, and loads the seed into it.
        checked = create_app({**overrides, "SEED_FILE": None})
        refusals += store_errors(checked.config)
        if args.control_token is not None and not checked.config["CONTROL"]:
            # Dropped, it would leave whoever gave it believing the control plane locked.
            off = "--no-control" if args.control is False else "SANDBOX_CONTROL=false"
            raise ValueError(f"--control-token has no use with {off}")
        shared = checked.config["STORE"] != "memory"
        if args.workers > 1 and not shared:
            raise ValueError("--workers above 1 needs a shared store: --store redis://HOST:PORT/DB")
        if shared:
            # Seeded once, here, not by each worker: a worker starting later would replace what
            # the others have written since.
            create_app(overrides)
            overrides["SEED_FILE"] = None
        sock = listen(args.host, args.port)
    except refusals as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    # Said once the sandbox can start, so that an unusable setting stays a one-line error.
    if args.threads is not None:
        print(f"{PROG}: --threads (SANDBOX_THREADS) is ignored: see --max-connections", file=sys.stderr)
    fitting = descriptors_for(args.max_connections)
    if fitting < args.max_connections:
        print(
            f"{PROG}: --max-connections lowered from {args.max_connections} to {fitting}, "
            "for the limit on open files (ulimit -n)",
            file=sys.stderr,
        )
    limits = Limits(fitting, args.header_timeout, args.body_timeout)
    host = WILDCARDS.get(args.host) or (f"[{args.host}]" if ":" in args.host else args.host)
    everywhere = (args.host or "0.0.0.0") if args.host in WILDCARDS else None
    factory = functools.partial(create_app, overrides)
    said = functools.partial(summary, workers=args.workers, seed_file=args.seed_file, everywhere=everywhere)
    url = f"http://{host}:{sock.getsockname()[1]}"
    Server(factory, sock, url, limits, workers=args.workers, summary=said).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
