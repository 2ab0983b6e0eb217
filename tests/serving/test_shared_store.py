"""Many workers and many sandboxes on one Redis are one sandbox: seen from outside, over real HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from helpers import Launched, auth, minimal_profile, post_json
from mypreferences_sandbox.testing.control_client import ControlClient
from redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def pair(redis_server: RedisServer) -> Iterator[tuple[Launched, Launched]]:
    """Two sandboxes, two workers each, sharing one Redis (and one namespace of it)."""
    env = {"SANDBOX_STORE": redis_server.url, "SANDBOX_STORE_NAMESPACE": f"pair-{uuid.uuid4().hex[:8]}"}
    with Launched("--workers", "2", env=env) as first, Launched("--workers", "2", env=env) as second:
        yield first, second


def profile_with(kind: str, ident: str) -> dict:
    return minimal_profile(AlternateIds=[{"AlternateIdType": kind, "AlternateId": ident}])


def test_more_than_one_worker_needs_a_shared_store():
    run = subprocess.run(
        [sys.executable, "-m", "mypreferences_sandbox", "--port", "0", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )

    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "mypreferences-sandbox: --workers above 1 needs a shared store: --store redis://HOST:PORT/DB"
    ]


def test_a_profile_written_through_one_sandbox_is_the_other_sandboxs(pair):
    first, second = pair
    created = post_json(f"{first.url}/acme/Profile", profile_with("CRM", "A-1"), **auth())
    url = f"{second.url}/acme/Profile/{created.json()['ProfileId']}"

    read = requests.get(url, headers=auth(), timeout=10)
    conflict = post_json(f"{second.url}/acme/Profile", profile_with("crm", "a-1"), **auth())
    deleted = requests.delete(url, headers=auth(), timeout=10)
    gone = requests.get(f"{first.url}/acme/Profile/{created.json()['ProfileId']}", headers=auth(), timeout=10)

    assert created.status_code == 201
    assert (read.status_code, read.json()) == (200, created.json())
    assert conflict.status_code == 409
    assert deleted.status_code in (200, 204)
    assert gone.status_code == 404


def test_one_alternate_id_raced_over_both_sandboxes_is_created_once(pair):
    urls = [f"{sandbox.url}/race/Profile" for sandbox in pair] * 25

    with ThreadPoolExecutor(16) as pool:
        statuses = Counter(
            pool.map(lambda url: post_json(url, profile_with("CRM", "R-1"), **auth()).status_code, urls)
        )

    assert statuses == Counter({201: 1, 409: 49})


def test_profile_ids_raced_over_both_sandboxes_are_unique(pair):
    urls = [f"{sandbox.url}/ids/Profile" for sandbox in pair] * 50

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda url: post_json(url, minimal_profile(), **auth()), urls))

    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["ProfileId"] for answer in answers}) == 100


def test_a_fault_rule_fires_exactly_its_times_wherever_the_requests_land(pair):
    first, second = pair
    ControlClient(first.url).add_fault(match={"clientId": "flaky"}, respond={"status": 503}, times=5)
    urls = [f"{sandbox.url}/flaky/Profile" for sandbox in pair] * 25

    with ThreadPoolExecutor(16) as pool:
        statuses = Counter(
            pool.map(lambda url: post_json(url, minimal_profile(), **auth()).status_code, urls)
        )

    assert statuses == Counter({503: 5, 201: 45})
    rule = ControlClient(second.url).faults()[0]
    assert (rule["hits"], rule["remaining"]) == (5, 0)


def test_a_reset_through_one_sandbox_resets_both(pair):
    first, second = pair
    created = post_json(f"{first.url}/acme/Profile", minimal_profile(), **auth())
    ControlClient(first.url).set_clock("2030-01-01T00:00:00Z")

    ControlClient(second.url).reset()

    gone = requests.get(f"{first.url}/acme/Profile/{created.json()['ProfileId']}", headers=auth(), timeout=10)
    assert gone.status_code == 404
    assert ControlClient(first.url).clock()["frozen"] is False


def test_redis_away_is_a_503_in_the_vendors_shape_and_the_sandbox_recovers():
    with RedisServer() as redis_server, Launched("--store", redis_server.url) as sandbox:
        url = f"{sandbox.url}/acme/Profile"
        before = post_json(url, minimal_profile(), **auth())
        redis_server.stop()

        away = post_json(url, minimal_profile(), **auth())
        health = requests.get(f"{sandbox.url}/_sandbox/health", timeout=10)

        redis_server.start()
        after = post_json(url, minimal_profile(), **auth())

    assert before.status_code == 201
    assert away.status_code == 503
    assert away.json() == {"Message": "The service is unavailable: its store (Redis) cannot be reached."}
    assert health.status_code == 503
    assert after.status_code == 201
    assert "Redis cannot be reached" in sandbox.stderr


def test_both_sandboxes_answer_an_unknown_route_alike(pair):
    first, second = pair

    answers = [requests.get(f"{sandbox.url}/nope/at/all", timeout=10) for sandbox in (first, second)]

    assert answers[0].status_code == answers[1].status_code == 404
    # The routes listed in one order, not in each process's order of a set.
    assert answers[0].json()["MessageDetail"] == answers[1].json()["MessageDetail"]


def test_a_full_redis_refuses_writes_with_a_503_and_still_answers_reads():
    with RedisServer() as redis_server, Launched("--store", redis_server.url) as sandbox:
        created = post_json(f"{sandbox.url}/acme/Profile", minimal_profile(), **auth())
        full = redis.Redis.from_url(redis_server.url)
        full.config_set("maxmemory-policy", "noeviction")
        full.config_set("maxmemory", 1)

        refused = post_json(f"{sandbox.url}/acme/Profile", minimal_profile(), **auth())
        clock = requests.put(
            f"{sandbox.url}/_sandbox/clock", json={"time": "2030-01-01T00:00:00Z"}, timeout=10
        )
        read = requests.get(
            f"{sandbox.url}/acme/Profile/{created.json()['ProfileId']}", headers=auth(), timeout=10
        )
        full.config_set("maxmemory", 0)

    assert (refused.status_code, refused.json()) == (
        503,
        {"Message": "The service is unavailable: its store (Redis) cannot be reached."},
    )
    assert clock.status_code == 503
    assert (read.status_code, read.json()) == (200, created.json())  # not journaled, and logged so
    assert "this request is not journaled" in sandbox.stderr


def test_a_silent_redis_is_waited_for_once_per_request():
    env = {"SANDBOX_STORE_TIMEOUT_MS": "300"}
    with RedisServer() as redis_server, Launched("--store", redis_server.url, env=env) as sandbox:
        post_json(f"{sandbox.url}/acme/Profile", minimal_profile(), **auth())
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            away = post_json(f"{sandbox.url}/acme/Profile", minimal_profile(), **auth())
        finally:
            redis_server.process.send_signal(signal.SIGCONT)

    assert away.status_code == 503
    # One wait: the answer's, not a second one for its journal entry.
    assert sandbox.stderr.count("Redis cannot be reached") == 1
