"""Benchmarks: figures, and ratios against a baseline run in the same process. Not a test.

    python benchmarks/bench.py [--quick]

Prints: the pytest fixture's in-process start-up time; reset time with 0 and 100,000 stored
profiles; create-profile throughput and latency of the shipped server configuration (gunicorn,
one gevent worker) and of the former one (one gthread worker, 64 threads), each next to a bare
Flask route served the same way; how responsive each gunicorn worker class stays while injected
hangs are in progress; health and create latency while 1,000 idle and 200 slowloris connections
are held open, former model against shipped; and health latency while a large export keeps the
server busy, the cost of serving from one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import logging
import multiprocessing
import os
import resource
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from sandbox.__main__ import Limits, Server, cooperative, descriptors_for, listen
from sandbox.app import create_app
from sandbox.auth import pnauthinfo3_header
from sandbox.control_client import ControlClient
from sandbox.profiles import Account, Editor, new_profile
from sandbox.pytest_plugin import InProcessServer

BODY = json.dumps(
    {
        "CustomerName": {"FirstName": "Ann", "LastName": "Example"},
        "Emails": [{"EmailAddress": "ann@example.com", "IsDefault": True}],
        "Addresses": [{"Address1": "1 Main St", "City": "Atlanta", "StateProvince": "GA",
                       "PostalCode": "30301", "CountryCode_Alpha2": "US"}],
    }
)  # fmt: skip
# Signed once, at start-up: the lenient authentication accepts it for SANDBOX_AUTH_WINDOW_SECONDS
# (15 minutes), longer than a run.
HEADERS = {"Content-Type": "application/json", "Authorization": pnauthinfo3_header("acme", "bench", "bench")}
# The serving models compared: the one shipped before (gthread, 64 threads, gunicorn's keep-alive,
# a backlog of 128) and the one shipped now (the command line's defaults).
MODELS = {"former": ("gthread", 128), "shipped": ("gevent", None)}


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``latencies`` (seconds), in milliseconds."""
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2] * 1000, ordered[min(int(len(ordered) * 0.99), len(ordered) - 1)] * 1000


def fixture_start_up(rounds: int) -> None:
    starts, stops = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        server = InProcessServer({})
        ControlClient(server.url).health()
        starts.append(time.perf_counter() - started)
        stops.append(timed(server.stop))
    start, stop = statistics.median(starts) * 1000, statistics.median(stops) * 1000
    print(f"in-process fixture (create_app, bind, first health answer), median of {rounds}: "
          f"start {start:.1f} ms, stop {stop:.1f} ms")  # fmt: skip


def fill(store: object, profiles: int, clients: int = 100) -> None:
    """Store ``profiles`` copies of the bench's profile, each with an AlternateId of its own."""
    editor = Editor(Account("Customer", "en_US"), "bench", datetime.now(UTC))
    template = new_profile(json.loads(BODY), editor)
    for index in range(profiles):
        store.create(  # type: ignore[attr-defined]
            f"client-{index % clients}",
            template | {"AlternateIds": [{"AlternateIdType": "t", "AlternateId": str(index)}]},
        )


def reset_cost(profiles: int) -> None:
    server = InProcessServer({})
    control = ControlClient(server.url)
    store = server.app.extensions["sandbox"].store
    results = {}
    for count in (0, profiles):
        fill(store, count)
        results[count] = statistics.median(timed(control.reset) for _ in range(1 if count else 5))
    server.stop()
    print(f"reset: {results[0] * 1000:.2f} ms with 0 profiles, {results[profiles] * 1000:.2f} ms with "
          f"{profiles:,} (ratio {results[profiles] / results[0]:.2f})")  # fmt: skip


def bare_app() -> Flask:
    app = Flask("bare")
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024, LOG_FORMAT="text")
    app.add_url_rule("/bare/Profile", "bare", lambda: ({"ProfileId": 1}, 201), methods=["POST"])
    return app


def serve(
    which: str, port_pipe: multiprocessing.connection.Connection, worker_class: str, backlog: int | None,
    profiles: int, limits: Limits,
) -> None:  # fmt: skip
    """Run in a child process: gunicorn as the command line runs it, with ``which`` app."""
    logging.disable(logging.INFO)  # no per-request log lines in the figures
    if worker_class == "gevent":
        cooperative()  # as the command line does, before the app exists
    app = create_app({"MAX_DELAY_MS": 60_000}) if which == "sandbox" else bare_app()
    if profiles:
        fill(app.extensions["sandbox"].store, profiles, clients=1)
    limits = dataclasses.replace(limits, max_connections=descriptors_for(limits.max_connections))
    sock = listen("127.0.0.1", 0) if backlog is None else _listen(backlog)
    port = sock.getsockname()[1]
    port_pipe.send(port)
    # gunicorn turns a sync worker with threads into gthread: the sync figures need threads=1.
    threads = 1 if worker_class == "sync" else 64
    url = f"http://127.0.0.1:{port} ({which}, {worker_class})"
    Server(app, sock, url, limits, worker_class, threads).run()


def _listen(backlog: int) -> socket.socket:
    """A listening socket as the command line made it before (its backlog)."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
    sock.set_inheritable(True)
    return sock


class Served:
    """A gunicorn server in a child process."""

    def __init__(
        self,
        which: str,
        worker_class: str = "gevent",
        backlog: int | None = None,
        profiles: int = 0,
        limits: Limits | None = None,
    ) -> None:
        ours, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=serve, args=(which, theirs, worker_class, backlog, profiles, limits or Limits())
        )
        self.process.start()
        self.port = ours.recv()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ControlClient(f"http://127.0.0.1:{self.port}").health()
                return
            except Exception:
                if which == "bare" and self._answers("/bare/Profile"):
                    return
                time.sleep(0.05)

    def _answers(self, path: str) -> bool:
        try:
            self.request("POST", path)
            return True
        except OSError:
            return False

    def request(
        self, method: str, path: str, body: str | None = BODY, timeout: float = 60
    ) -> tuple[int, float]:
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=HEADERS)
            status = connection.getresponse().status
        finally:
            connection.close()
        return status, time.perf_counter() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


def load(server: Served, path: str, clients: int, per_client: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        mine = [server.request("POST", path)[1] for _ in range(per_client)]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (clients * per_client) / (time.perf_counter() - started), sorted(latencies)


def throughput(clients: int, per_client: int) -> None:
    rates = {}
    for model, (worker_class, backlog) in MODELS.items():
        for which, path in (("bare", "/bare/Profile"), ("sandbox", "/acme/Profile")):
            server = Served(which, worker_class, backlog)
            load(server, path, clients, 20)  # warm up
            rate, latencies = load(server, path, clients, per_client)
            server.stop()
            rates[model, which] = rate
            p50, p99 = percentiles(latencies)
            print(f"{which:>8}: {rate:7.0f} creates/s, p50 {p50:6.2f} ms, p99 {p99:6.2f} ms "
                  f"({clients} clients x {per_client}, one {worker_class} worker: {model})")  # fmt: skip
    for model in MODELS:
        ratio = rates[model, "sandbox"] / rates[model, "bare"]
        print(f"sandbox create vs bare Flask route ({model}): {ratio:.2f} of its throughput")
    ratio = rates["shipped", "sandbox"] / rates["former", "sandbox"]
    print(f"sandbox creates/s, shipped / former: {ratio:.2f}")


def responsiveness(hangs: int, seconds: float) -> None:
    for worker_class in ("sync", "gthread", "gevent"):
        server = Served("sandbox", worker_class)
        control = ControlClient(f"http://127.0.0.1:{server.port}")
        control.add_fault(match={"clientId": "slow"}, fault={"type": "HANG", "duration": int(seconds * 1000)})
        hanging = [threading.Thread(target=_quietly, args=(server.request, "GET", "/slow/Profile/1", None))
                   for _ in range(hangs)]  # fmt: skip
        for thread in hanging:
            thread.start()
        time.sleep(0.3)
        status, latency = server.request("POST", "/acme/Profile")
        for thread in hanging:
            thread.join()
        server.stop()
        print(f"{worker_class:>8}: a create during {hangs} hangs of {seconds:.0f} s answered {status} "
              f"in {latency * 1000:8.1f} ms")  # fmt: skip


def _quietly(call: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):  # the hang ends with a closed connection
        call(*args)


class Siege:
    """``idle`` connections that never send a byte and ``slow`` ones that send a request line, then
    one header line every ``every`` seconds and never the blank line (slowloris): held open by
    opening again each one the server closes. From a process of its own, so that the client
    measured does not wait for the attackers' turn at the interpreter."""

    def __init__(self, port: int, idle: int, slow: int, every: float = 2.0) -> None:
        ours, theirs = multiprocessing.Pipe()
        self.pipe = ours
        self.process = multiprocessing.get_context("fork").Process(
            target=Siege._hold, args=(theirs, ("127.0.0.1", port), idle, slow, every)
        )
        self.process.start()
        self.pipe.recv()  # every connection is open

    def close(self) -> tuple[int, int, int]:
        """Stop: (connections held at the end, opened again, connects that timed out)."""
        self.pipe.send("stop")
        counts = self.pipe.recv()
        self.process.join(10)
        return counts

    @staticmethod
    def _hold(
        pipe: multiprocessing.connection.Connection, address: tuple[str, int], idle: int, slow: int,
        every: float,
    ) -> None:  # fmt: skip
        selector = selectors.DefaultSelector()
        counts = {"reopened": 0, "refused": 0}

        def open_one(slow: bool) -> None:
            sock = socket.socket()
            sock.settimeout(0.5)  # a server that stopped accepting fills its backlog: connect waits
            try:
                sock.connect(address)
                if slow:
                    sock.sendall(b"GET /_sandbox/health HTTP/1.1\r\nHost: bench\r\n")
            except OSError:
                sock.close()
                counts["refused"] += 1
                return
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, slow)

        for index in range(idle + slow):
            open_one(index >= idle)
        pipe.send("open")
        next_header = time.monotonic() + every
        while not pipe.poll():
            lost = []
            for key, _ in selector.select(timeout=0.1):
                try:
                    if key.fileobj.recv(65536):  # type: ignore[union-attr]
                        continue  # an answer (a 408, say): the connection ends next
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                lost.append(key)
            if time.monotonic() >= next_header:
                next_header += every
                for key in list(selector.get_map().values()):
                    if key.data and key not in lost:
                        try:
                            key.fileobj.send(b"X-Slow: 1\r\n")  # type: ignore[union-attr]
                        except BlockingIOError:
                            pass
                        except OSError:
                            lost.append(key)
            for key in lost:
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                counts["reopened"] += 1
                open_one(key.data)
        held = len(selector.get_map())
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        pipe.send((held, counts["reopened"], counts["refused"]))


def under_siege(idle: int, slow: int, duration: float, timeout: float) -> None:
    """Health and create latency from another client while ``idle`` idle and ``slow`` slowloris
    connections are held open: one of each, again and again, for ``duration`` seconds (longer
    than the header timeout, so that the attackers the server cuts off come back during it). A
    request that takes longer than ``timeout`` is given up and counts as ``timeout``."""
    figures = {}
    # The shipped limits cut the attackers off after the header timeout, and they come back; with a
    # longer one, every connection stays open throughout.
    held_open = ("shipped, header timeout 60 s", *MODELS["shipped"], Limits(header_timeout=60))
    variants = [*((model, *MODELS[model], Limits()) for model in MODELS), held_open]
    for model, worker_class, backlog, limits in variants:
        server = Served("sandbox", worker_class, backlog, limits=limits)
        siege = Siege(server.port, idle, slow)
        time.sleep(1)  # the server has taken them all in
        latencies: dict[str, list[float]] = {"health": [], "create": []}
        given_up = 0
        ends = time.monotonic() + duration
        while time.monotonic() < ends:
            for what, method, path, body in (("health", "GET", "/_sandbox/health", None),
                                             ("create", "POST", "/acme/Profile", BODY)):  # fmt: skip
                started = time.perf_counter()
                try:
                    server.request(method, path, body, timeout=timeout)
                except OSError:
                    given_up += 1
                latencies[what].append(min(time.perf_counter() - started, timeout))
            time.sleep(0.05)
        held, reopened, refused = siege.close()
        server.stop()
        figures[model] = {what: percentiles(values) for what, values in latencies.items()}
        for what, (p50, p99) in figures[model].items():
            print(f"{what:>8} under {idle:,} idle + {slow} slowloris ({model}, {worker_class}): "
                  f"p50 {_at_least(p50, timeout)}, p99 {_at_least(p99, timeout)}, "
                  f"{len(latencies[what])} requests")  # fmt: skip
        print(f"          ({model}: {held} attackers held at the end, {reopened} opened again after the "
              f"server closed them, {refused} connects timed out; {given_up} requests given up at "
              f"{timeout:.0f} s)")  # fmt: skip
    for what in ("health", "create"):
        for model in ("shipped", held_open[0]):
            ratios = [figures["former"][what][i] / figures[model][what][i] for i in (0, 1)]
            bound = ">= " if figures["former"][what][0] >= timeout * 1000 else ""
            print(f"{what:>8} latency under siege, former / {model}: p50 {bound}{ratios[0]:,.0f}x, "
                  f"p99 {bound}{ratios[1]:,.0f}x")  # fmt: skip


def _at_least(milliseconds: float, timeout: float) -> str:
    """A latency, or the timeout it reached (no answer came within it)."""
    if milliseconds >= timeout * 1000:
        return f">= {milliseconds:,.0f} ms (no answer)"
    return f"{milliseconds:,.1f} ms"


def busy(profiles: int, duration: float) -> None:
    """Health latency, sampled for ``duration`` seconds, while the whole store (``profiles``
    profiles of one clientId) is exported again and again: CPU-bound work, which threads share by
    turns but which a gevent worker finishes before it serves anything else."""
    for model, (worker_class, backlog) in MODELS.items():
        server = Served("sandbox", worker_class, backlog, profiles)
        control = ControlClient(f"http://127.0.0.1:{server.port}", timeout=120)
        single = timed(lambda control=control: control.export_state("client-0"))
        done = threading.Event()

        def export(control: ControlClient = control, done: threading.Event = done) -> None:
            while not done.is_set():
                control.export_state("client-0")

        exporter = threading.Thread(target=export)
        exporter.start()
        time.sleep(0.2)
        latencies = []
        ends = time.monotonic() + duration
        while time.monotonic() < ends:
            latencies.append(server.request("GET", "/_sandbox/health", None)[1])
            time.sleep(0.05)
        done.set()
        exporter.join()
        server.stop()
        p50, p99 = percentiles(latencies)
        print(f"  health while {profiles:,} profiles are exported over and over ({model}, {worker_class}): "
              f"p50 {p50:7.1f} ms, p99 {p99:7.1f} ms, {len(latencies)} requests "
              f"(one export alone: {single * 1000:,.0f} ms)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    quick = parser.parse_args().quick
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the in-process fixture's request lines
    # The siege holds 1,200 connections here, and the server as many on its side.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"mypreferences-sandbox benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{len(os.sched_getaffinity(0))} cores, open files {soft} -> {hard}")  # fmt: skip
    fixture_start_up(5 if quick else 20)
    reset_cost(10_000 if quick else 100_000)
    throughput(4, 50 if quick else 500)
    responsiveness(8, 2 if quick else 3)
    under_siege(1000, 200, duration=12 if quick else 30, timeout=10 if quick else 30)
    busy(10_000, duration=5 if quick else 20)


if __name__ == "__main__":
    main()
