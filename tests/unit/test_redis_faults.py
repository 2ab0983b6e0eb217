"""The fault registry in Redis across processes: exact turns, added rules, the bound, reset, cost per request."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import redis
from mypreferences_sandbox.contract.control_schemas import RuleSchema
from mypreferences_sandbox.contract.errors import Conflict
from mypreferences_sandbox.domain.faults import FaultRegistry, RequestFacts
from mypreferences_sandbox.redis.faults import RedisFaultRegistry
from mypreferences_sandbox.redis.shared import Shared

RULE = RuleSchema()  # how the control plane loads a rule

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CAP_MS = 10_000
ERROR = {"respond": {"status": 503}}
# Processes are spawned, not forked: the test process runs threads (the served sandbox's) that a
# fork would copy mid-step.
SPAWN = multiprocessing.get_context("spawn")
WAIT = 120  # seconds: a process that never answers fails the test rather than hanging it


def facts(method: str = "POST", client_id: str | None = "acme") -> RequestFacts:
    return RequestFacts(method, f"/{client_id}/Profile", "create_profile", client_id, {})


def registry(url: str, namespace: str, **limits: int) -> RedisFaultRegistry:
    """A registry of its own connection on ``namespace``, as each process of a sandbox holds one."""
    return RedisFaultRegistry(Shared(redis.Redis.from_url(url), namespace=namespace), 0, **limits)


# --- run in other processes ---------------------------------------------------------------------

_HELD: dict[tuple, RedisFaultRegistry] = {}


def _call(url: str, namespace: str, limits: dict, method: str, args: tuple, options: dict) -> Any:
    """``method`` of this process's registry on ``namespace``, held from call to call as a worker
    holds it, so that what it caches is put to the test."""
    key = (url, namespace, tuple(sorted(limits.items())))
    held = _HELD.get(key) or _HELD.setdefault(key, registry(url, namespace, **limits))
    return getattr(held, method)(*args, **options)


def _race(url: str, namespace: str, start: Any, results: Any, threads: int, per_thread: int) -> None:
    """Fire ``threads`` x ``per_thread`` matching requests, from threads started together once every
    racing process is ready; put the firings' (id, hits, remaining) on ``results``."""
    racer = registry(url, namespace)
    firings: list[tuple] = []
    lock = threading.Lock()
    together = threading.Barrier(threads)

    def worker() -> None:
        together.wait()
        mine = [firing for _ in range(per_thread) if (firing := racer.fire(facts(), NOW, CAP_MS))]
        with lock:
            firings.extend((firing.rule_id, firing.hits, firing.remaining) for firing in mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start.wait()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    results.put(firings)


def _add_many(url: str, namespace: str, start: Any, results: Any, count: int, max_active: int) -> None:
    """Try to add ``count`` rules once every racing process is ready; put the ids added on ``results``."""
    adder = registry(url, namespace, max_active=max_active)
    added = []
    start.wait()
    for _ in range(count):
        with contextlib.suppress(Conflict):
            added.append(adder.add(RULE.load(ERROR), NOW)["id"])
    results.put(added)


def race(target: Any, url: str, namespace: str, *args: Any, processes: int = 2) -> list:
    """Run ``target(url, namespace, start, results, *args)`` in ``processes`` processes at once, each
    waiting for the others at ``start``; what they put on ``results``, all together."""
    start, results = SPAWN.Barrier(processes), SPAWN.Queue()
    racers = [
        SPAWN.Process(target=target, args=(url, namespace, start, results, *args)) for _ in range(processes)
    ]
    for racer in racers:
        racer.start()
    outcomes = [item for _ in racers for item in results.get(timeout=WAIT)]
    for racer in racers:
        racer.join(WAIT)
        assert racer.exitcode == 0
    return outcomes


class Elsewhere:
    """A registry held by another process (the pool's one worker), called method by method."""

    def __init__(self, pool: ProcessPoolExecutor, url: str, namespace: str, **limits: int) -> None:
        self.pool, self.url, self.namespace, self.limits = pool, url, namespace, limits

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **options: Any) -> Any:
            called = self.pool.submit(_call, self.url, self.namespace, self.limits, method, args, options)
            return called.result(WAIT)

        return call


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as executor:
        yield executor


@pytest.fixture
def here(connection, namespace) -> RedisFaultRegistry:
    """This process's registry."""
    return RedisFaultRegistry(Shared(connection, namespace=namespace), 0)


@pytest.fixture
def elsewhere(pool, redis_server, namespace) -> Elsewhere:
    """Another process's registry, on the same namespace."""
    return Elsewhere(pool, redis_server.url, namespace)


# --- two processes, one registry ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "matched"),
    [({}, 5), ({"skip": 3}, 8), ({"probability": 1}, 5), ({"skip": 3, "probability": 1}, None)],
    ids=["times", "skip", "odds-drawn-first", "odds-drawn-past-the-skip"],
)
def test_two_processes_racing_fire_a_rule_exactly_its_times(redis_server, namespace, here, lifetime, matched):
    here.add(RULE.load({"times": 5, **lifetime, **ERROR}), NOW)

    firings = race(_race, redis_server.url, namespace, 5, 5)  # 2 processes x 5 threads x 5 requests

    assert len(firings) == 5
    assert sorted(hits for _, hits, _ in firings) == [1, 2, 3, 4, 5]
    assert sorted(remaining for _, _, remaining in firings) == [0, 1, 2, 3, 4]
    report = here.report("f1", NOW)
    assert (report["hits"], report["remaining"], report["state"]) == (5, 0, "spent")
    # Odds drawn past the skip take two calls: a request may lose the last turn between them, and
    # count as matched only.
    assert report["matched"] == matched if matched is not None else report["matched"] >= 8


def test_processes_adding_at_once_stop_at_the_bound_together(redis_server, namespace, here):
    added = race(_add_many, redis_server.url, namespace, 10, 5)

    assert sorted(added) == ["f1", "f2", "f3", "f4", "f5"]
    assert [report["id"] for report in here.reports(NOW)] == ["f1", "f2", "f3", "f4", "f5"]


def test_a_rule_added_in_one_process_fires_in_the_other(here, elsewhere):
    assert elsewhere.fire(facts(), NOW, CAP_MS) is None  # the other process holds a view of no rule

    here.add(RULE.load({"match": {"clientId": "acme"}, "times": 2, **ERROR}), NOW)
    first = elsewhere.fire(facts(), NOW, CAP_MS)
    elsewhere.add(RULE.load({"match": {"clientId": "beta"}, **ERROR}), NOW)
    second = here.fire(facts(client_id="beta"), NOW, CAP_MS)

    assert (first.rule_id, first.hits, first.remaining) == ("f1", 1, 1)
    assert second.rule_id == "f2"
    assert (here.fire(facts(), NOW, CAP_MS).hits, elsewhere.fire(facts(), NOW, CAP_MS)) == (2, None)
    assert [(r["id"], r["state"]) for r in elsewhere.reports(NOW)] == [("f1", "spent"), ("f2", "active")]


def test_a_rule_matching_on_the_body_fires_in_the_other_process_as_added(here, elsewhere):
    body = {"/Emails/0/EmailAddress": "x@example.com", "/Rank": 2.0, "/Vip": True, "/Note": None}
    here.add(RULE.load({"match": {"clientId": "acme", "body": body}, **ERROR}), NOW)

    def sent(document: dict) -> RequestFacts:
        # A callable another process can unpickle: the body as it would parse.
        return RequestFacts("POST", "/acme/Profile", "create_profile", "acme", {}, partial(dict, document))

    hit = elsewhere.fire(
        sent({"Emails": [{"EmailAddress": "x@example.com"}], "Rank": 2, "Vip": True, "Note": None}),
        NOW,
        CAP_MS,
    )
    miss = elsewhere.fire(
        sent({"Emails": [{"EmailAddress": "x@example.com"}], "Rank": 2, "Vip": 1, "Note": None}), NOW, CAP_MS
    )

    assert (hit.rule_id, miss) == ("f1", None)
    assert elsewhere.report("f1", NOW)["match"]["body"] == body


def test_the_bound_on_active_rules_holds_across_processes(pool, redis_server, connection, namespace):
    here = RedisFaultRegistry(Shared(connection, namespace=namespace), 0, max_active=3)
    elsewhere = Elsewhere(pool, redis_server.url, namespace, max_active=3)
    here.add(RULE.load({"times": 1, **ERROR}), NOW)
    elsewhere.add(RULE.load(ERROR), NOW)
    here.add(RULE.load(ERROR), NOW)

    with pytest.raises(
        Conflict, match=r"holds 3 active fault rules, as many as SANDBOX_MAX_FAULT_RULES \(3\)"
    ):
        elsewhere.add(RULE.load(ERROR), NOW)
    with pytest.raises(Conflict):
        here.add(RULE.load(ERROR), NOW)
    assert elsewhere.fire(facts(), NOW, CAP_MS).rule_id == "f1"  # spent: room for one more
    assert here.add(RULE.load(ERROR), NOW)["id"] == "f4"
    with pytest.raises(Conflict):
        elsewhere.add(RULE.load(ERROR), NOW)


def test_a_reset_or_a_deletion_in_one_process_is_seen_by_the_other(here, elsewhere):
    here.add(RULE.load({"match": {"clientId": "acme"}, **ERROR}), NOW)
    here.add(RULE.load({"match": {"method": "POST"}, **ERROR}), NOW)
    here.add(RULE.load(ERROR), NOW)
    assert elsewhere.fire(facts(), NOW, CAP_MS).rule_id == "f1"

    here.reset("acme")
    assert elsewhere.fire(facts(), NOW, CAP_MS).rule_id == "f2"
    elsewhere.delete("f2")
    assert here.fire(facts(), NOW, CAP_MS).rule_id == "f3"
    elsewhere.reset()
    assert here.fire(facts(), NOW, CAP_MS) is None
    assert here.reports(NOW) == []

    # The ids restart: a new f1, matching GET only, is not the f1 the other process held.
    assert here.add(RULE.load({"match": {"method": "GET"}, **ERROR}), NOW)["id"] == "f1"
    assert elsewhere.fire(facts(), NOW, CAP_MS) is None
    assert elsewhere.fire(facts(method="GET"), NOW, CAP_MS).rule_id == "f1"
    assert [(r["id"], r["matched"]) for r in here.reports(NOW)] == [("f1", 1)]


def test_a_full_reset_with_a_seed_seeds_the_rules_any_process_adds(here, elsewhere):
    spec = {"probability": 0.5, **ERROR}
    in_memory = FaultRegistry(9)
    in_memory.add(RULE.load(spec), NOW)

    elsewhere.reset(seed=9)
    elsewhere.add(RULE.load(spec), NOW)

    assert here.seed == 9
    assert [here.fire(facts(), NOW, CAP_MS) is not None for _ in range(40)] == [
        in_memory.fire(facts(), NOW, CAP_MS) is not None for _ in range(40)
    ]


def test_an_expiry_passed_in_one_process_is_seen_by_the_other(here, elsewhere):
    here.add(RULE.load({"ttl": 1000, **ERROR}), NOW)
    here.add(RULE.load({"match": {"method": "POST"}, **ERROR}), NOW)
    later = NOW + timedelta(seconds=1)
    assert here.fire(facts(), NOW, CAP_MS).rule_id == "f1"

    assert elsewhere.fire(facts(), later, CAP_MS).rule_id == "f2"
    assert here.report("f1", later)["state"] == "expired"
    assert here.fire(facts(), later, CAP_MS).rule_id == "f2"
    assert elsewhere.fire(facts(), NOW, CAP_MS).rule_id == "f1"  # the clock set back revives it


# --- what a request costs, what Redis keeps -----------------------------------------------------


@pytest.fixture
def commands(connection, monkeypatch) -> list[str]:
    """The name of every command sent on ``here``'s connection from now on."""
    sent: list[str] = []
    real = connection.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return real(*args, **options)

    monkeypatch.setattr(connection, "execute_command", counted)
    return sent


def test_a_request_no_rule_matches_costs_one_get(here, commands):
    assert here.fire(facts(), NOW, CAP_MS) is None  # no rule: its view read once
    assert commands == ["GET", "EVALSHA"]
    for spec in ({"match": {"clientId": "beta"}}, {"match": {"method": "GET"}, "ttl": 60_000}):
        here.add(RULE.load({**spec, **ERROR}), NOW)
    here.fire(facts(), NOW, CAP_MS)  # the view read again, once
    commands.clear()

    assert [here.fire(facts(), NOW, CAP_MS) for _ in range(10)] == [None] * 10
    assert commands == ["GET"] * 10


def test_a_matching_request_costs_one_script_more(here, commands):
    here.add(RULE.load({"match": {"clientId": "acme"}, **ERROR}), NOW)
    here.add(RULE.load({"match": {"clientId": "acme"}, "probability": 1, **ERROR}), NOW)
    here.fire(facts(), NOW, CAP_MS)
    commands.clear()

    assert [here.fire(facts(), NOW, CAP_MS).rule_id for _ in range(10)] == ["f1"] * 10
    assert commands == ["GET", "EVALSHA"] * 10


def rules_kept(shared: Shared) -> set[str]:
    """The ids of the rules whose fields Redis holds."""
    return {field.decode().split(":")[0] for field in shared.redis.hkeys(shared.server_key("faults:rules"))}


def test_redis_keeps_only_the_rules_kept_and_a_full_reset_leaves_the_version_and_seed(connection, namespace):
    shared = Shared(connection, namespace=namespace)
    registry = RedisFaultRegistry(shared, 0, max_finished=2)
    for _ in range(5):
        registry.add(RULE.load({"times": 1, "ttl": 1000, **ERROR}), NOW)
        registry.fire(facts(), NOW, CAP_MS)
    registry.add(RULE.load({"match": {"clientId": "beta"}, **ERROR}), NOW)
    registry.add(RULE.load({"ttl": 1000, **ERROR}), NOW)
    registry.delete("f6")

    assert rules_kept(shared) == {"f4", "f5", "f7"}
    assert rules_kept(shared) == {report["id"] for report in registry.reports(NOW)}
    registry.reset(seed=3)
    assert sorted(shared.redis.keys(f"{{{namespace}}}:*")) == [
        f"{{{namespace}}}:faults:seed".encode(),
        f"{{{namespace}}}:faults:version".encode(),
    ]
