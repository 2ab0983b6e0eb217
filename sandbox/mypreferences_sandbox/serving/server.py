"""gunicorn serving the app: the worker's set-up, its garbage collector, the listening socket."""

from __future__ import annotations

import functools
import gc
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from gevent import monkey  # type: ignore[import-untyped]
from gunicorn.app.base import BaseApplication

from ..parts import AFTER_IMPORT
from .deadline import BodyDeadline, WSGIApp
from .limits import body_limit, streams_body

PROG = "mypreferences-sandbox"


# Queued connections the kernel holds for the worker to accept (capped by net.core.somaxconn).
BACKLOG = 2048


# Descriptors kept for everything but client connections: the listening socket, pipes, logs, the
# socket pairs of connection faults.
RESERVED_DESCRIPTORS = 64


# The collector's thresholds in the worker (gen0 allocations, then gen1 and gen2 collections), set
# after start-up has been frozen out of its reach: see docs/performance.md, "Garbage collection".
GC_THRESHOLDS = (10_000, 10, 10)


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the server (docs/cli.md, "Limits")."""

    max_connections: int = 4096  # open at once; more wait in the listen backlog
    header_timeout: int = 5  # seconds to deliver a whole request head (and idle keep-alive)
    body_timeout: int = 10  # seconds to deliver a whole request body, after its head; then 408


def cooperative() -> None:
    """Make blocking calls cooperative (gevent's monkey-patching): sockets, ``select``, ``sleep``,
    locks and threads. Called before the app is created, so that the locks of its store, journal
    and fault registry are gevent's too; gunicorn's gevent worker patches again (idempotent)."""
    monkey.patch_all()


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
