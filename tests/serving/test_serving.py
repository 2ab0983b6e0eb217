"""How the command line's server holds up against clients that hold connections: idle ones,
slowloris ones, slow bodies and injected hangs, over real sockets on 127.0.0.1.

Each test starts the command line (gunicorn, one gevent worker) and times what another client
gets meanwhile. The bounds are generous (a second where the target is 100 ms, which
benchmarks/bench.py measures): they tell a server that answers from one that waits.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import Launched, auth, minimal_profile, post_json, send, send_bytes
from mypreferences_sandbox.testing.control_client import ControlClient

# The target of the issue ("Hardening"): 1,000 idle and 200 slowloris connections.
IDLE, SLOWLORIS = 1000, 200
# What a test allows a request that should answer at once.
PROMPTLY = 1.0  # seconds
BODY = json.dumps(minimal_profile()).encode()


@pytest.fixture(scope="module", autouse=True)
def open_files() -> Iterator[int]:
    """The limit on open files, raised to its hard limit for this module (and so for the servers
    it starts, which inherit it): a test here holds over a thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    except (ValueError, OSError):
        raised = soft
    yield raised
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def launched(open_files) -> Iterator[Launched]:
    """The command line with its default limits, shared by the tests of this module that need no
    others."""
    with Launched() as launched:
        yield launched


def scaled(count: int, open_files: int) -> int:
    """``count`` connections, fewer if this process may not open that many sockets (the server
    holds as many on its side, in a process of its own)."""
    room = open_files - 256
    return max(1, min(count, room * count // (IDLE + SLOWLORIS)))


def connect(port: int, first: bytes = b"") -> socket.socket:
    """A connection to the server that has sent ``first`` and nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def head(method: str, path: str, **headers: str) -> bytes:
    """A request head, but for its blank line, with the vendor's ``Authorization``."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: sandbox",
        *(f"{k}: {v}" for k, v in {**auth(), **headers}.items()),
    ]
    return "".join(f"{line}\r\n" for line in lines).encode()


def still_open(sock: socket.socket) -> bool:
    """True if the server has neither closed nor answered ``sock``."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # b"": closed; anything else: answered
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def answer(sock: socket.socket, within: float) -> bytes:
    """Everything the server sends on ``sock`` until it closes it (at most ``within`` seconds)."""
    sock.settimeout(within)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


@contextlib.contextmanager
def slowloris(port: int, count: int, every: float) -> Iterator[list[socket.socket]]:
    """``count`` connections that send a request line and a header, then another header every
    ``every`` seconds, and never end their head."""
    socks = [connect(port, head("GET", "/_sandbox/health")) for _ in range(count)]
    done = threading.Event()

    def drip() -> None:
        while not done.wait(every):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    dripping = threading.Thread(target=drip)
    dripping.start()
    try:
        yield socks
    finally:
        done.set()
        dripping.join()
        for sock in socks:
            sock.close()


def timed_health_and_create(url: str) -> tuple[list[int], float]:
    """Statuses of a health check and a create from a fresh client, and the slower's time."""
    statuses, slowest = [], 0.0
    for call in (lambda: send("GET", f"{url}/_sandbox/health"),
                 lambda: post_json(f"{url}/acme/Profile", minimal_profile())):  # fmt: skip
        started = time.monotonic()
        statuses.append(call().status_code)
        slowest = max(slowest, time.monotonic() - started)
    return statuses, slowest


def test_answers_promptly_while_idle_and_slowloris_connections_are_held(open_files):
    idle, slow = scaled(IDLE, open_files), scaled(SLOWLORIS, open_files)
    # A header timeout longer than the test: every connection stays open throughout.
    with Launched("--header-timeout", "60") as launched:
        idlers = [connect(launched.port) for _ in range(idle)]
        try:
            with slowloris(launched.port, slow, every=1.0) as slowlorises:
                time.sleep(2.5)  # each slowloris connection has sent a few headers
                rounds = [timed_health_and_create(launched.url) for _ in range(5)]
                held = sum(still_open(sock) for sock in idlers + slowlorises)
        finally:
            for sock in idlers:
                sock.close()

    assert [statuses for statuses, _ in rounds] == [[200, 201]] * 5
    assert max(slowest for _, slowest in rounds) < PROMPTLY
    assert held == idle + slow  # answered while every one of them was open


def test_header_timeout_closes_idle_and_slowloris_connections():
    with Launched("--header-timeout", "1") as launched:
        idler = connect(launched.port)
        with slowloris(launched.port, 1, every=0.3) as [loris]:
            started = time.monotonic()
            cut = [answer(sock, within=10) for sock in (idler, loris)]
            took = time.monotonic() - started
        idler.close()
        statuses, _ = timed_health_and_create(launched.url)

    assert cut == [b"", b""]  # closed unanswered
    assert took < 5  # one second each (a header sent every 0.3 s does not extend it), and some slack
    assert statuses == [200, 201]


def test_many_hangs_in_flight_do_not_stop_other_clients(launched, open_files, client_id):
    hangs = scaled(SLOWLORIS, open_files)  # more than the 64 threads the former server had
    control = ControlClient(launched.url)
    [rule] = [control.add_fault(match={"clientId": client_id}, fault={"type": "HANG", "duration": 10_000},
                                times=hangs)]  # fmt: skip
    request = head("GET", f"/{client_id}/Profile/1") + b"\r\n"
    held = [connect(launched.port, request) for _ in range(hangs)]
    try:
        deadline = time.monotonic() + 10
        while control.fault(rule["id"])["hits"] < hangs and time.monotonic() < deadline:
            time.sleep(0.05)
        hits = control.fault(rule["id"])["hits"]
        statuses, slowest = timed_health_and_create(launched.url)
        hanging = sum(still_open(sock) for sock in held)
    finally:
        for sock in held:  # the hangs end as their clients leave
            sock.close()

    assert hits == hangs
    assert statuses == [200, 201]
    assert slowest < PROMPTLY
    assert hanging == hangs


def test_slow_bodies_are_answered_408_and_closed_while_others_are_served(open_files):
    count = scaled(SLOWLORIS, open_files)
    partial = head("POST", "/slowbody/Profile", **{"Content-Type": "application/json"}, **{
        "Content-Length": str(len(BODY))}) + b"\r\n" + BODY[:10]  # fmt: skip
    with Launched("--body-timeout", "2") as launched:
        started = time.monotonic()
        slow = [connect(launched.port, partial) for _ in range(count)]
        try:
            statuses, slowest = timed_health_and_create(launched.url)
            answers = [answer(sock, within=10) for sock in slow]
            took = time.monotonic() - started
        finally:
            for sock in slow:
                sock.close()
        journaled = ControlClient(launched.url).requests(client_id="slowbody")

    assert statuses == [200, 201]
    assert slowest < PROMPTLY
    assert took < 8  # two seconds, and some slack for a slow machine
    status_line, _, rest = answers[0].partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b"\r\nConnection: close\r\n" in rest
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "Message": "The request body did not arrive within 2 seconds."
    }
    assert set(answers) == {answers[0]}
    assert journaled == []  # the application never saw them
    assert launched.stderr.count("POST /slowbody/Profile 408 ") == count


def test_a_body_that_arrives_in_pieces_within_the_body_timeout_is_served(launched):
    sock = connect(
        launched.port,
        head("POST", "/acme/Profile", **{"Content-Type": "application/json", "Content-Length": str(len(BODY)),
                                         "Connection": "close"}) + b"\r\n",
    )  # fmt: skip
    with sock:
        for start in range(0, len(BODY), len(BODY) // 3 + 1):
            time.sleep(0.3)
            sock.sendall(BODY[start : start + len(BODY) // 3 + 1])
        received = answer(sock, within=10)

    assert received.startswith(b"HTTP/1.1 201 Created\r\n")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["CustomerName"]["FirstName"] == "Ann"


def test_chunked_and_100_continue_bodies_are_served(launched):
    chunked = head("POST", "/acme/Profile", **{"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked", "Connection": "close"})  # fmt: skip
    chunked += b"\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (BODY[:20], BODY[20:]))
    chunked += b"0\r\n\r\n"
    expecting = head("POST", "/acme/Profile", **{"Content-Type": "application/json", "Expect": "100-continue",
                                                 "Content-Length": str(len(BODY)), "Connection": "close"})  # fmt: skip
    with connect(launched.port, chunked) as sock:
        answered_chunked = answer(sock, within=10)
    with connect(launched.port, expecting + b"\r\n") as sock:
        sock.settimeout(5)
        interim = sock.recv(65536)  # before the body is sent
        sock.sendall(BODY)
        answered_expecting = answer(sock, within=10)

    assert answered_chunked.startswith(b"HTTP/1.1 201 Created\r\n")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answered_expecting.startswith(b"HTTP/1.1 201 Created\r\n")


def test_a_body_declared_too_large_is_refused_unread(launched):
    too_large = head("POST", "/acme/Profile", **{"Content-Type": "application/json",
                                                 "Content-Length": str(2 * 1024 * 1024)})  # fmt: skip
    with connect(launched.port, too_large + b"\r\n") as sock:
        started = time.monotonic()
        sock.settimeout(10)
        status_line = sock.recv(65536).partition(b"\r\n")[0]
        took = time.monotonic() - started

    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert took < PROMPTLY  # not after the body timeout: the limit is known from the head


def test_a_chunked_body_over_the_limit_is_413(launched):
    valid = json.dumps(minimal_profile()).encode()
    padded = valid.ljust(1024 * 1024 + 1)  # valid JSON, then whitespace one byte past the limit
    pieces = (padded[start : start + 65536] for start in range(0, len(padded), 65536))

    response = send_bytes("POST", f"{launched.url}/chunked/Profile", pieces, "application/json")

    assert response.status_code == 413
    assert ControlClient(launched.url).export_state("chunked")["clients"] == {}  # nothing stored


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length: 100", b'{"CustomerName":{"FirstName":"cut"}}'),
        ("Transfer-Encoding: chunked", b'24\r\n{"CustomerName":{"FirstName":"cut"}}\r\n'),  # no last chunk
    ],
    ids=["shorter-than-declared", "chunked-without-its-end"],
)
def test_a_body_cut_short_is_400_and_stores_nothing(launched, framing, body):
    head = "POST /cut/Profile HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\n"
    head += f"Authorization: {auth()['Authorization']}\r\n{framing}\r\n\r\n"
    with connect(launched.port, head.encode() + body) as sock:
        sock.shutdown(socket.SHUT_WR)
        answered = answer(sock, within=10)

    assert answered.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"The body ended before its declared length." in answered
    assert ControlClient(launched.url).export_state("cut")["clients"] == {}


def test_a_chunked_state_document_larger_than_the_body_limit_is_imported(launched):
    document = json.dumps({"clients": {"big": [minimal_profile()]}}).encode().ljust(1024 * 1024 + 10)
    pieces = (document[start : start + 65536] for start in range(0, len(document), 65536))

    response = send_bytes("POST", f"{launched.url}/_sandbox/state", pieces, "application/json")

    assert response.status_code == 200
    assert response.json()["imported"] == {"big": 1}


def test_connections_beyond_max_connections_wait_their_turn():
    with Launched("--max-connections", "20", "--header-timeout", "1") as launched:
        idlers = [connect(launched.port) for _ in range(20)]
        try:
            time.sleep(0.3)  # every idle connection is taken in: the worker accepts no more
            started = time.monotonic()
            health = send("GET", f"{launched.url}/_sandbox/health")
            took = time.monotonic() - started
        finally:
            for sock in idlers:
                sock.close()

    assert health.status_code == 200
    assert took > 0.4  # it waited for the header timeout to free a place (1 s after the idle ones came)


def test_a_broken_chunk_is_the_vendors_400_and_stores_nothing(launched):
    head = "POST /broken/Profile HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\n"
    head += f"Authorization: {auth()['Authorization']}\r\nTransfer-Encoding: chunked\r\n\r\n"
    with connect(launched.port, head.encode() + b"2\r\n{}\r\nzz\r\n") as sock:
        sock.shutdown(socket.SHUT_WR)
        answered = answer(sock, within=10)

    assert answered.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Content-Type: application/json" in answered
    assert ControlClient(launched.url).export_state("broken")["clients"] == {}


def test_a_slow_state_import_is_read_as_it_arrives_past_the_body_timeout():
    document = json.dumps({"clients": {"slow": [minimal_profile()]}}).encode()

    def trickle() -> Iterator[bytes]:
        for start in range(0, len(document), 10):
            time.sleep(0.1)
            yield document[start : start + 10]

    with Launched("--body-timeout", "1") as launched:
        response = send_bytes("POST", f"{launched.url}/_sandbox/state", trickle(), "application/json")

    assert len(document) > 100  # 10 bytes each 0.1 s: longer than the 1 s the body timeout allows
    assert response.status_code == 200
    assert response.json()["imported"] == {"slow": 1}


def test_a_body_declared_too_large_is_not_read_by_anyone(launched):
    # A head declaring 4 GiB, then the body sent as fast as the socket takes it: the 413 comes at
    # once and the connection ends within the linger (a second), rather than the whole body being
    # read and thrown away, the other clients waiting meanwhile.
    declared = 4 * 1024**3
    too_large = head("POST", "/acme/Profile", **{"Content-Type": "application/json",
                                                 "Content-Length": str(declared)})  # fmt: skip
    with connect(launched.port, too_large + b"\r\n") as sock:
        sock.settimeout(10)
        sent = 0
        with contextlib.suppress(OSError):  # the server ends the connection
            while sent < declared:
                sent += sock.send(b" " * 65536)
        answered = answer(sock, within=10)

    assert answered.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert sent < declared
