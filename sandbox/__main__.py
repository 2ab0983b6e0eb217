"""The command line: ``mypreferences-sandbox`` (or ``python -m sandbox``) serves the sandbox with gunicorn.

The in-memory store lives in one process, so gunicorn runs one worker, with threads (``gthread``):
injected delays and hangs hold a thread each, and the others keep answering (README: measured).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from .app import create_app
from .settings import SETTINGS

PROG = "mypreferences-sandbox"


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
    parser.add_argument(
        "--host",
        default=env("SANDBOX_HOST", "127.0.0.1"),
        help="address to listen on (SANDBOX_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=env("SANDBOX_PORT", "8080"),
        help="port; 0 picks a free one (SANDBOX_PORT, default 8080)",
    )
    parser.add_argument(
        "--threads",
        type=positive,
        default=env("SANDBOX_THREADS", "64"),
        help="requests served at once, delays and hangs included (SANDBOX_THREADS, default 64)",
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
        "--log-format",
        default=env("SANDBOX_LOG_FORMAT"),
        choices=["text", "json"],
        help="one line per request, as text or JSON (SANDBOX_LOG_FORMAT, default text)",
    )
    return parser.parse_args(argv)


class Server(BaseApplication):
    """gunicorn serving ``app`` on an already-bound socket: one worker, ``threads`` threads."""

    def __init__(
        self, app: Flask, sock: socket.socket, threads: int, url: str, worker_class: str = "gthread"
    ) -> None:
        self.application = app
        self.options = {
            "bind": [f"fd://{sock.fileno()}"],
            "workers": 1,
            # Other worker classes exist for the benchmark's comparison (README: why gthread).
            "worker_class": worker_class,
            "threads": threads,
            # Stop within a second: in-flight requests get one second to finish.
            "graceful_timeout": 1,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "control_socket_disable": True,
            "post_worker_init": lambda worker: print(f"{PROG} serving on {url}", flush=True),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (port 0: a free one), inheritable by gunicorn's worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    sock.set_inheritable(True)
    return sock


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM or SIGINT; print its URL once it accepts connections."""
    args = parse_args(argv)
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("SEED_FILE", args.seed_file),
            ("AUTH_MODE", args.auth_mode),
            ("LOG_FORMAT", args.log_format),
        )
        if value is not None
    }
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        app = create_app(overrides)
        sock = listen(args.host, args.port)
    except (ValueError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    Server(app, sock, args.threads, f"http://{host}:{sock.getsockname()[1]}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
