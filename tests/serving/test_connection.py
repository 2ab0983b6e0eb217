"""Connection-level faults as a real client sees them: what http.client and urllib raise."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from helpers import auth, minimal_profile
from mypreferences_sandbox.testing.control_client import ControlClient

BODY = json.dumps(minimal_profile()).encode()


@pytest.fixture(params=["werkzeug", "gunicorn"])
def server(request, served, launched) -> tuple[int, ControlClient]:
    """The port and control client of the development server, then of the command line's gunicorn."""
    port, url = (served.port, served.url) if request.param == "werkzeug" else (launched.port, launched.url)
    return port, ControlClient(url)


def stored(control: ControlClient, client_id: str) -> int:
    return len(control.export_state(client_id)["clients"].get(client_id, []))


def exchange(port: int, client_id: str, timeout: float = 10, stray: bytes = b"") -> tuple[int, bytes]:
    """POST a create over a fresh connection with http.client (then ``stray`` bytes, as a client
    pipelining requests would); (status, body) or what it raises."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST", f"/{client_id}/Profile", body=BODY, headers={"Content-Type": "application/json", **auth()}
        )
        if stray:
            time.sleep(0.1)  # after the server has read the request: the bytes wait in the socket
            connection.sock.sendall(stray)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("fault", "raised"),
    [
        ("CONNECTION_RESET_BY_PEER", ConnectionResetError),
        ("EMPTY_RESPONSE", http.client.RemoteDisconnected),
        ("RANDOM_DATA_THEN_CLOSE", http.client.BadStatusLine),
        ("MALFORMED_RESPONSE_CHUNK", http.client.IncompleteRead),
    ],
)
@pytest.mark.parametrize("when", ["before", "after"])
def test_connection_faults(server, client_id, fault, raised, when):
    port, control = server
    control.add_fault(match={"clientId": client_id}, fault={"type": fault}, when=when, times=1)

    with pytest.raises(raised):
        exchange(port, client_id)

    assert stored(control, client_id) == (1 if when == "after" else 0)
    [entry] = control.requests(client_id=client_id)
    assert entry["status"] is None
    assert entry["fault"]["when"] == when
    assert exchange(port, client_id)[0] == 201  # the server is fine afterwards


def test_malformed_chunk_before_promises_200(server, client_id):
    port, control = server
    control.add_fault(match={"clientId": client_id}, fault={"type": "MALFORMED_RESPONSE_CHUNK"}, times=1)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", f"/{client_id}/Profile", body=BODY, headers={"Content-Type": "application/json", **auth()}
        )
        response = connection.getresponse()
        status = response.status
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        connection.close()

    assert status == 200


def test_truncated_response_promises_more_than_it_sends(server, client_id):
    port, control = server
    control.add_fault(match={"clientId": client_id}, fault={"type": "TRUNCATED_RESPONSE"}, times=1)

    with pytest.raises(http.client.IncompleteRead) as cut:
        exchange(port, client_id)

    assert 0 < len(cut.value.partial) < cut.value.expected + len(cut.value.partial)
    assert stored(control, client_id) == 1  # response-shaping faults happen after the operation


def test_urllib_sees_a_reset_as_an_error(server, client_id):
    _, control = server
    control.add_fault(match={"clientId": client_id}, fault={"type": "CONNECTION_RESET_BY_PEER"}, times=1)
    request = urllib.request.Request(
        f"{control.base_url}/{client_id}/Profile",
        data=BODY,
        headers={"Content-Type": "application/json", **auth()},
    )

    with pytest.raises((urllib.error.URLError, ConnectionResetError)):
        urllib.request.urlopen(request, timeout=10)


def test_dribble_delivers_the_whole_response_slowly(server, client_id):
    port, control = server
    control.add_fault(
        match={"clientId": client_id}, fault={"type": "DRIBBLE", "chunks": 4, "duration": 600}, times=1
    )

    started = time.monotonic()
    status, body = exchange(port, client_id)

    assert status == 201
    assert json.loads(body)["CustomerName"]["FirstName"] == "Ann"
    assert time.monotonic() - started >= 0.6
    assert control.requests(client_id=client_id)[0]["status"] == 201


def test_dribble_trips_a_client_read_timeout(server, client_id):
    port, control = server
    control.add_fault(
        match={"clientId": client_id}, fault={"type": "DRIBBLE", "chunks": 2, "duration": 1500}, times=1
    )

    with pytest.raises(TimeoutError):
        exchange(port, client_id, timeout=0.5)


def test_hang_until_the_capped_time_then_close(server, client_id):
    port, control = server
    control.add_fault(match={"clientId": client_id}, fault={"type": "HANG", "duration": 500}, times=1)

    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        exchange(port, client_id)

    assert time.monotonic() - started >= 0.5
    assert stored(control, client_id) == 0


@pytest.mark.parametrize("stray", [b"", b"GET / HTTP/1.1\r\n\r\n" * 3], ids=["plain", "with-pipelined-bytes"])
def test_hang_ends_when_the_client_gives_up(control, served, client_id, stray):
    control.add_fault(match={"clientId": client_id}, fault={"type": "HANG", "duration": 8000}, times=1)
    before = set(threading.enumerate())
    outcome = []

    def give_up_after_half_a_second() -> None:
        try:
            exchange(served.port, client_id, timeout=0.5, stray=stray)
        except TimeoutError as error:
            outcome.append(error)

    client = threading.Thread(target=give_up_after_half_a_second)
    client.start()
    time.sleep(0.25)  # the request is in the server, held by the hang
    [serving] = [
        thread for thread in threading.enumerate() if thread not in before | {client} and thread.is_alive()
    ]
    client.join()
    serving.join(timeout=3)

    # The thread serving the hang ended soon after the client left, well before the 8 s hang.
    assert outcome and isinstance(outcome[0], TimeoutError)
    assert not serving.is_alive()
    assert exchange(served.port, client_id)[0] == 201
