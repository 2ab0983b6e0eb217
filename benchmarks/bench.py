"""Benchmarks: figures, and ratios against a baseline run in the same process. Not a test.

    python benchmarks/bench.py [--quick]

Prints: the pytest fixture's in-process start-up time; reset time with 0 and 100,000 stored
profiles; create-profile throughput and latency of the shipped server configuration (gunicorn,
one gthread worker) next to a bare Flask route served the same way; and how responsive each
gunicorn worker class stays while injected hangs are in progress (gevent: `pip install gevent`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from sandbox.__main__ import Server, listen
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


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


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


def reset_cost(profiles: int) -> None:
    server = InProcessServer({})
    control = ControlClient(server.url)
    store = server.app.extensions["sandbox"].store
    editor = Editor(Account("Customer", "en_US"), "bench", datetime.now(UTC))
    template = new_profile(json.loads(BODY), editor)
    results = {}
    for count in (0, profiles):
        for index in range(count):
            store.create(
                f"client-{index % 100}",
                template | {"AlternateIds": [{"AlternateIdType": "t", "AlternateId": str(index)}]},
            )
        results[count] = statistics.median(timed(control.reset) for _ in range(1 if count else 5))
    server.stop()
    print(f"reset: {results[0] * 1000:.2f} ms with 0 profiles, {results[profiles] * 1000:.2f} ms with "
          f"{profiles:,} (ratio {results[profiles] / results[0]:.2f})")  # fmt: skip


def bare_app() -> Flask:
    app = Flask("bare")
    app.add_url_rule("/bare/Profile", "bare", lambda: ({"ProfileId": 1}, 201), methods=["POST"])
    return app


def serve(which: str, port_pipe: multiprocessing.connection.Connection, worker_class: str) -> None:
    """Run in a child process: gunicorn as the command line runs it, with ``which`` app."""
    import logging

    logging.disable(logging.INFO)  # no per-request log lines in the figures
    app = create_app({"MAX_DELAY_MS": 60_000}) if which == "sandbox" else bare_app()
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    port_pipe.send(port)
    # gunicorn turns a sync worker with threads into gthread: the sync figures need threads=1.
    threads = 1 if worker_class == "sync" else 64
    Server(app, sock, threads, f"http://127.0.0.1:{port} ({which}, {worker_class})", worker_class).run()


class Served:
    """A gunicorn server in a child process."""

    def __init__(self, which: str, worker_class: str = "gthread") -> None:
        ours, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=serve, args=(which, theirs, worker_class)
        )
        self.process.start()
        self.port = ours.recv()
        deadline = time.monotonic() + 15
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

    def request(self, method: str, path: str, body: str | None = BODY) -> tuple[int, float]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=HEADERS)
        status = connection.getresponse().status
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
    figures = {}
    for which, path in (("bare", "/bare/Profile"), ("sandbox", "/acme/Profile")):
        server = Served(which)
        load(server, path, clients, 20)  # warm up
        figures[which] = load(server, path, clients, per_client)
        server.stop()
    for which, (rate, latencies) in figures.items():
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        print(f"{which:>8}: {rate:7.0f} creates/s, p50 {p50 * 1000:6.2f} ms, p99 {p99 * 1000:6.2f} ms "
              f"({clients} clients x {per_client}, gunicorn gthread, one worker)")  # fmt: skip
    ratio = figures["sandbox"][0] / figures["bare"][0]
    print(f"sandbox create vs bare Flask route: {ratio:.2f} of its throughput")


def responsiveness(hangs: int, seconds: float) -> None:
    for worker_class in ("sync", "gthread", "gevent"):
        try:
            if worker_class == "gevent":
                import gevent  # noqa: F401
        except ImportError:
            print(f"{worker_class:>8}: not installed (pip install gevent)")
            continue
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    quick = parser.parse_args().quick
    print(f"mypreferences-sandbox benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    fixture_start_up(5 if quick else 20)
    reset_cost(10_000 if quick else 100_000)
    throughput(4, 50 if quick else 500)
    responsiveness(8, 2 if quick else 3)


if __name__ == "__main__":
    main()
