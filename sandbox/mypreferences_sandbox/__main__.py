"""The command line: ``mypreferences-sandbox`` (``python -m mypreferences_sandbox``) serves it with gunicorn.

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
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from . import __version__
from .app import SEEDED, create_app
from .parts import EXTENSION, store_errors
from .serving.server import PROG, Limits, Server, cooperative, descriptors_for, listen
from .settings import SETTINGS, unknown_variables

# Addresses that mean "every address": where the sandbox listens, but not where to reach it, so the
# URL it prints names the loopback address of the same family instead.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}


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
        if record.name == "mypreferences_sandbox.requests" and line.startswith("{"):
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
