"""Both fault registries (memory, Redis) without HTTP: matching, order, lifetimes, odds, bounds, delays."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import redis
from helpers import STORES
from mypreferences_sandbox.contract.control_schemas import RuleSchema
from mypreferences_sandbox.contract.errors import Conflict, NotFound
from mypreferences_sandbox.domain import faults
from mypreferences_sandbox.domain.faults import FaultRegistry, Firing, RequestFacts, Rule
from mypreferences_sandbox.redis.faults import RedisFaultRegistry
from mypreferences_sandbox.redis.shared import Shared
from werkzeug.datastructures import Headers

RULE = RuleSchema()  # how the control plane loads a rule

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CAP_MS = 10_000


def facts(
    method: str = "POST",
    path: str = "/acme/Profile",
    operation: str | None = "create_profile",
    client_id: str | None = "acme",
    headers: object = None,
    body: object = None,
) -> RequestFacts:
    return RequestFacts(
        method, path, operation, client_id, headers if headers is not None else Headers(), lambda: body
    )


Registry = FaultRegistry | RedisFaultRegistry


@pytest.fixture(params=STORES)
def new_registry(request: pytest.FixtureRequest) -> Iterator[Callable[..., Registry]]:
    """Makes empty registries of one kind: in memory, or in Redis, each in a namespace of its own."""
    if request.param == "memory":
        yield FaultRegistry
        return
    url = request.getfixturevalue("redis_server").url
    clients: list[redis.Redis] = []

    def make(seed: int, **limits: int) -> RedisFaultRegistry:
        clients.append(redis.Redis.from_url(url))
        return RedisFaultRegistry(Shared(clients[-1], namespace=uuid4().hex), seed, **limits)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def registry_with(new_registry: Callable[..., Registry]) -> Callable[..., Registry]:
    """Makes registries holding one rule per spec, each loaded as the control plane loads it."""

    def make(*specs: dict, seed: int = 0) -> Registry:
        registry = new_registry(seed)
        for spec in specs:
            registry.add(RULE.load(spec), NOW)
        return registry

    return make


def fire(registry: Registry, request: RequestFacts | None = None, now: datetime = NOW) -> Firing | None:
    return registry.fire(request or facts(), now, CAP_MS)


def fired_ids(registry: Registry, count: int, request: RequestFacts | None = None) -> list[str | None]:
    return [firing.rule_id if (firing := fire(registry, request)) else None for _ in range(count)]


def counters(registry: Registry, rule_id: str = "f1", now: datetime = NOW) -> tuple:
    report = registry.report(rule_id, now)
    return report["matched"], report["hits"], report["remaining"], report["state"]


ERROR = {"respond": {"status": 503}}


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "request_facts", "fires"),
    [
        ({}, facts(), True),
        ({"method": "POST"}, facts(method="POST"), True),
        ({"method": "post"}, facts(method="POST"), True),
        ({"method": ["GET", "PUT"]}, facts(method="PUT"), True),
        ({"method": ["GET", "PUT"]}, facts(method="POST"), False),
        ({"path": "/acme/Profile*"}, facts(path="/acme/Profile/12"), True),
        ({"path": "/acme/Profile*"}, facts(path="/acme/profile/12"), False),
        ({"path": "/*/Profile/?"}, facts(path="/beta/Profile/7"), True),
        ({"path": "/*/Profile/?"}, facts(path="/beta/Profile/17"), False),
        ({"operation": "create_profile"}, facts(operation="create_profile"), True),
        ({"operation": "create_profile"}, facts(operation="get_profile"), False),
        ({"operation": "create_profile"}, facts(operation=None), False),
        ({"clientId": "acme"}, facts(client_id="acme"), True),
        ({"clientId": "acme"}, facts(client_id="acme-2"), False),
        ({"clientId": "acme"}, facts(client_id=None), False),
        ({"headers": {"X-Test-Case": "retry-*"}}, facts(headers=Headers({"x-test-case": "retry-3"})), True),
        ({"headers": {"x-test-case": "retry-*"}}, facts(headers=Headers({"X-TEST-CASE": "retry-3"})), True),
        ({"headers": {"X-Test-Case": "retry-*"}}, facts(headers=Headers({"X-Test-Case": "Retry-3"})), False),
        ({"headers": {"X-Test-Case": "retry-*"}}, facts(headers=Headers({"X-Other": "retry-3"})), False),
        ({"headers": {"X-Test-Case": "*"}}, facts(headers=Headers()), False),
        ({"headers": {"X-Test-Case": "*"}}, facts(headers=Headers({"X-Test-Case": ""})), True),
        ({"headers": {"A": "1", "B": "2"}}, facts(headers=Headers({"A": "1", "B": "2"})), True),
        ({"headers": {"A": "1", "B": "2"}}, facts(headers=Headers({"A": "1"})), False),
        ({"headers": {"X-Test-Case": "retry-*"}}, facts(headers={"X-Test-Case": "retry-1"}), True),
        ({"headers": {"X-Test-Case": "retry-*"}}, facts(headers={}), False),
        ({"method": "POST", "clientId": "acme", "path": "/acme/*"}, facts(), True),
        ({"method": "POST", "clientId": "acme", "path": "/beta/*"}, facts(), False),
    ],
    ids=[
        "empty-matches-all", "one-method", "method-lower-case", "method-list-hit", "method-list-miss",
        "path-glob-hit", "path-glob-is-case-sensitive", "path-question-mark-one-char", "path-question-mark-miss",
        "operation-hit", "operation-miss", "operation-unknown", "client-hit", "client-miss", "client-none",
        "header-glob-hit", "header-name-case-ignored", "header-value-glob-is-case-sensitive",
        "header-absent-other-present", "header-absent-none", "header-empty-value-matches-star",
        "headers-all-hit", "headers-one-missing", "plain-get-object-hit", "plain-get-object-absent",
        "all-criteria-hit", "one-criterion-misses",
    ],
)  # fmt: skip
def test_a_rule_fires_only_when_every_criterion_holds(registry_with, match, request_facts, fires):
    registry = registry_with({"match": match, **ERROR})

    firing = fire(registry, request_facts)

    assert (firing is not None) == fires
    assert counters(registry) == ((1, 1, None, "active") if fires else (0, 0, None, "active"))


def test_a_plain_object_with_get_serves_as_headers(registry_with):
    class Lowered:
        def __init__(self, **values: str) -> None:
            self.values = {name.lower(): value for name, value in values.items()}

        def get(self, key: str) -> str | None:
            return self.values.get(key.lower())

    registry = registry_with({"match": {"headers": {"X-Case": "a*"}}, **ERROR})

    assert fire(registry, facts(headers=Lowered(x_case="no"))) is None
    assert fire(registry, facts(headers=Lowered(**{"x-case": "abc"}))).rule_id == "f1"


# --- order ------------------------------------------------------------------------------------


def test_the_first_matching_rule_in_creation_order_fires_and_only_it(registry_with):
    registry = registry_with(
        {"match": {"clientId": "beta"}, **ERROR},
        {"match": {"method": "POST"}, "respond": {"status": 500}},
        {"match": {}, "respond": {"status": 502}},
    )

    firing = fire(registry)

    assert (firing.rule_id, firing.spec["respond"]) == ("f2", {"status": 500})
    assert [(r["id"], r["matched"], r["hits"]) for r in registry.reports(NOW)] == [
        ("f1", 0, 0),
        ("f2", 1, 1),
        ("f3", 0, 0),
    ]


def test_a_spent_rule_lets_the_next_one_fire(registry_with):
    registry = registry_with({"times": 1, **ERROR}, {"times": 2, **ERROR})

    assert fired_ids(registry, 4) == ["f1", "f2", "f2", None]


def test_a_deleted_rule_no_longer_fires_and_a_new_one_comes_last(registry_with):
    registry = registry_with(ERROR, ERROR)
    registry.delete("f1")
    registry.add(RULE.load(ERROR), NOW)

    assert [r["id"] for r in registry.reports(NOW)] == ["f2", "f3"]
    assert fired_ids(registry, 2) == ["f2", "f2"]


# --- skip and times ---------------------------------------------------------------------------


def test_skip_lets_the_first_matches_pass_and_counts_them(registry_with):
    registry = registry_with({"skip": 2, "times": 1, **ERROR})

    outcomes = fired_ids(registry, 4)

    assert outcomes == [None, None, "f1", None]
    assert counters(registry) == (3, 1, 0, "spent")


def test_skip_counts_only_matching_requests(registry_with):
    registry = registry_with({"match": {"method": "GET"}, "skip": 1, **ERROR})

    assert fire(registry, facts(method="POST")) is None
    assert fire(registry, facts(method="GET")) is None
    assert fire(registry, facts(method="GET")).rule_id == "f1"
    assert counters(registry) == (2, 1, None, "active")


def test_times_spends_the_rule_after_n_firings(registry_with):
    registry = registry_with({"times": 2, **ERROR})

    first, second, third = (fire(registry) for _ in range(3))

    assert (first.hits, first.remaining) == (1, 1)
    assert (second.hits, second.remaining) == (2, 0)
    assert third is None
    assert counters(registry) == (2, 2, 0, "spent")


def test_a_spent_rule_counts_no_further_matches(registry_with):
    registry = registry_with({"times": 1, **ERROR})

    fired_ids(registry, 5)

    assert counters(registry) == (1, 1, 0, "spent")


def test_without_times_a_rule_fires_forever(registry_with):
    registry = registry_with(ERROR)

    assert fired_ids(registry, 20) == ["f1"] * 20
    assert counters(registry) == (20, 20, None, "active")


# --- probability ------------------------------------------------------------------------------


@pytest.fixture
def probability_outcomes(registry_with: Callable[..., Registry]) -> Callable[..., list[bool]]:
    """Whether each of ``count`` requests draws a fault from a fresh registry of one rule."""

    def outcomes(spec: dict, seed: int = 0, count: int = 40) -> list[bool]:
        registry = registry_with(spec, seed=seed)
        return [fire(registry) is not None for _ in range(count)]

    return outcomes


def test_a_seeded_probability_repeats_its_sequence_in_a_fresh_registry(probability_outcomes):
    spec = {"probability": 0.5, "seed": 7, **ERROR}

    first, second = probability_outcomes(spec, seed=1), probability_outcomes(spec, seed=2)

    assert first == second
    assert 5 < sum(first) < 35
    assert first != probability_outcomes({**spec, "seed": 8})


def test_without_a_seed_the_registry_seed_and_rule_id_decide(registry_with, probability_outcomes):
    spec = {"probability": 0.5, **ERROR}
    as_f2 = registry_with(spec, spec, seed=3)
    as_f2.delete("f1")

    same = probability_outcomes(spec, seed=3), probability_outcomes(spec, seed=3)
    other_seed = probability_outcomes(spec, seed=4)
    other_id = [fire(as_f2) is not None for _ in range(40)]

    assert same[0] == same[1]
    assert same[0] != other_seed
    assert same[0] != other_id


def test_a_probability_miss_counts_the_match_but_not_a_hit(registry_with, probability_outcomes):
    outcomes = probability_outcomes({"probability": 0.5, "seed": 7, **ERROR})
    registry = registry_with({"probability": 0.5, "seed": 7, **ERROR})

    fired_ids(registry, 40)

    assert counters(registry) == (40, sum(outcomes), None, "active")


@pytest.mark.parametrize(("probability", "expected"), [(0, False), (0.0, False), (1, True), (1.0, True)])
def test_probability_zero_never_fires_and_one_always_does(probability_outcomes, probability, expected):
    assert probability_outcomes({"probability": probability, **ERROR}, count=200) == [expected] * 200


def test_a_probability_miss_lets_the_next_rule_fire(registry_with):
    registry = registry_with({"probability": 0, **ERROR}, ERROR)

    assert fired_ids(registry, 2) == ["f2", "f2"]
    assert counters(registry, "f1") == (2, 0, None, "active")


def test_a_full_reset_with_a_seed_draws_as_a_fresh_registry_with_that_seed(
    registry_with, probability_outcomes
):
    spec = {"probability": 0.5, **ERROR}
    registry = registry_with(spec, seed=1)
    fired_ids(registry, 5)

    registry.reset(seed=9)
    registry.add(RULE.load(spec), NOW)

    assert [fire(registry) is not None for _ in range(40)] == probability_outcomes(spec, seed=9)


def test_a_full_reset_without_a_seed_keeps_the_registry_seed(registry_with, probability_outcomes):
    spec = {"probability": 0.5, **ERROR}
    registry = registry_with(spec, seed=5)

    registry.reset()
    registry.add(RULE.load(spec), NOW)

    assert registry.seed == 5
    assert [fire(registry) is not None for _ in range(40)] == probability_outcomes(spec, seed=5)


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "state", "fires"),
    [(timedelta(milliseconds=-1), "active", True), (timedelta(0), "expired", False),
     (timedelta(hours=1), "expired", False)],
    ids=["just-before", "at-expiry", "after"],
)  # fmt: skip
@pytest.mark.parametrize(
    ("lifetime", "expires"),
    [({"ttl": 90_000}, NOW + timedelta(seconds=90)),
     ({"expiresAt": "2026-01-01T14:30:00+02:00"}, datetime(2026, 1, 1, 12, 30, tzinfo=UTC))],
    ids=["ttl", "expiresAt"],
)  # fmt: skip
def test_a_rule_expires_at_its_time(registry_with, lifetime, expires, offset, state, fires):
    registry = registry_with({**lifetime, **ERROR})
    moment = expires + offset

    firing = fire(registry, now=moment)

    assert (firing is not None) == fires
    assert counters(registry, now=moment) == (int(fires), int(fires), None, state)


@pytest.mark.parametrize(
    ("lifetime", "shown"),
    [({"ttl": 1500}, "2026-01-01T12:00:01.500Z"),
     ({"expiresAt": "2026-01-01T14:30:00+02:00"}, "2026-01-01T12:30:00.000Z"),
     ({}, None)],
    ids=["ttl", "expiresAt", "none"],
)  # fmt: skip
def test_expiry_is_reported_in_utc_and_the_ttl_is_not(registry_with, lifetime, shown):
    registry = registry_with({**lifetime, **ERROR})

    report = registry.report("f1", NOW)

    assert report["expiresAt"] == shown
    assert "ttl" not in report


def test_the_ttl_counts_from_the_time_the_rule_is_added(new_registry):
    registry = new_registry(0)
    added = NOW + timedelta(days=3)
    registry.add(RULE.load({"ttl": 1000, **ERROR}), added)

    assert fire(registry, now=added + timedelta(milliseconds=999)).rule_id == "f1"
    assert fire(registry, now=added + timedelta(milliseconds=1000)) is None


def test_expiry_wins_over_spent_in_the_state(registry_with):
    registry = registry_with({"times": 1, "ttl": 1000, **ERROR})
    fire(registry)

    assert counters(registry) == (1, 1, 0, "spent")
    assert counters(registry, now=NOW + timedelta(seconds=1)) == (1, 1, 0, "expired")


def test_the_full_report_of_a_rule(new_registry):
    registry = new_registry(0)
    spec = {
        "match": {"clientId": "acme", "method": "POST"},
        "respond": {"status": 503, "headers": {"Retry-After": "2"}},
        "times": 2,
        "skip": 1,
        "probability": 1,
        "seed": 7,
        "ttl": 60_000,
    }

    added = registry.add(RULE.load(spec), NOW)
    fired_ids(registry, 2)

    expected = {
        "id": "f1",
        "match": {"clientId": "acme", "method": ["POST"]},
        "respond": {"status": 503, "headers": {"Retry-After": "2"}},
        "times": 2,
        "skip": 1,
        "probability": 1.0,
        "seed": 7,
        "when": "before",
        "expiresAt": "2026-01-01T12:01:00.000Z",
    }
    assert added == {**expected, "matched": 0, "hits": 0, "remaining": 2, "state": "active"}
    assert registry.reports(NOW) == [{**expected, "matched": 2, "hits": 1, "remaining": 1, "state": "active"}]


# --- reports, delete and reset ----------------------------------------------------------------


def test_reports_can_be_narrowed_to_a_client(registry_with):
    registry = registry_with(
        {"match": {"clientId": "acme"}, **ERROR}, ERROR, {"match": {"clientId": "beta"}, **ERROR}
    )

    assert [r["id"] for r in registry.reports(NOW)] == ["f1", "f2", "f3"]
    assert [r["id"] for r in registry.reports(NOW, "acme")] == ["f1"]
    assert [r["id"] for r in registry.reports(NOW, "gamma")] == []


def test_a_client_reset_removes_only_that_clients_rules_and_ids_keep_counting(registry_with):
    registry = registry_with(
        {"match": {"clientId": "acme"}, **ERROR},
        {"match": {"clientId": "beta"}, **ERROR},
        ERROR,
        {"match": {"clientId": "acme", "method": "GET"}, **ERROR},
    )

    registry.reset("acme")
    added = registry.add(RULE.load(ERROR), NOW)

    assert added["id"] == "f5"
    assert [r["id"] for r in registry.reports(NOW)] == ["f2", "f3", "f5"]


def test_a_full_reset_removes_every_rule_and_restarts_the_ids(registry_with):
    registry = registry_with({"match": {"clientId": "acme"}, **ERROR}, ERROR)

    registry.reset()

    assert registry.reports(NOW) == []
    assert fire(registry) is None
    assert registry.add(RULE.load(ERROR), NOW)["id"] == "f1"


@pytest.mark.parametrize(
    "action",
    [lambda registry: registry.report("f1", NOW), lambda registry: registry.delete("f1")],
    ids=["report", "delete"],
)
def test_an_unknown_rule_is_not_found(registry_with, action):
    registry = registry_with(ERROR)
    registry.delete("f1")

    with pytest.raises(NotFound) as raised:
        action(registry)

    assert (raised.value.status, raised.value.message) == (404, "No fault rule 'f1' exists.")
    assert registry.reports(NOW) == []


def test_the_order_of_creation_holds_across_scoped_and_unscoped_rules(registry_with):
    registry = registry_with(
        {"match": {"clientId": "acme"}, "skip": 1, "times": 1, **ERROR},
        {"skip": 1, **ERROR},
        {"match": {"clientId": "beta"}, **ERROR},
        {"match": {"clientId": "acme"}, **ERROR},
    )

    assert fired_ids(registry, 3) == ["f4", "f1", "f2"]
    assert fire(registry, facts(client_id="beta")).rule_id == "f2"
    assert [(r["id"], r["matched"], r["hits"], r["state"]) for r in registry.reports(NOW)] == [
        ("f1", 2, 1, "spent"),
        ("f2", 3, 2, "active"),
        ("f3", 0, 0, "active"),
        ("f4", 1, 1, "active"),
    ]


def test_an_expired_rule_fires_again_in_its_place_when_the_clock_is_set_back(registry_with):
    registry = registry_with({"ttl": 1000, **ERROR}, ERROR)
    later = NOW + timedelta(seconds=1)

    assert fire(registry, now=later).rule_id == "f2"
    assert counters(registry, now=later) == (0, 0, None, "expired")
    assert fire(registry, now=NOW).rule_id == "f1"
    assert fire(registry, now=later).rule_id == "f2"
    assert counters(registry, now=NOW) == (1, 1, None, "active")


def test_the_finished_rules_kept_are_bounded_and_the_first_finished_are_dropped_first(new_registry):
    registry = new_registry(0, max_finished=3)
    for spec in (
        {"match": {"method": "GET"}, **ERROR},
        *({"match": {"headers": {"X-Case": str(case)}}, "times": 1, **ERROR} for case in range(1, 5)),
        {"match": {"method": "GET"}, "ttl": 1000, **ERROR},
    ):
        registry.add(RULE.load(spec), NOW)

    for case in (3, 1, 4, 2):  # f4, f2, f5 and f3 are spent, in that order
        assert fire(registry, facts(headers=Headers({"X-Case": str(case)}))) is not None
    listed = [(r["id"], r["state"]) for r in registry.reports(NOW)]
    expired = [(r["id"], r["state"]) for r in registry.reports(NOW + timedelta(seconds=1))]

    assert listed == [("f1", "active"), ("f2", "spent"), ("f3", "spent"), ("f5", "spent"), ("f6", "active")]
    assert expired == [("f1", "active"), ("f3", "spent"), ("f5", "spent"), ("f6", "expired")]
    with pytest.raises(NotFound):
        registry.report("f4", NOW)
    assert fire(registry, facts(method="GET")).rule_id == "f1"


def test_finished_rules_can_be_deleted_and_reset_like_active_ones(registry_with):
    registry = registry_with(
        {"times": 1, **ERROR}, {"match": {"clientId": "beta"}, "times": 1, **ERROR}, {"ttl": 1, **ERROR}
    )
    later = NOW + timedelta(seconds=1)
    fire(registry)
    fire(registry, facts(client_id="beta"))

    registry.delete("f1")
    registry.reset("beta")

    assert [(r["id"], r["state"]) for r in registry.reports(later)] == [("f3", "expired")]
    assert fire(registry, now=later) is None


def rules_examined(registry: Registry, monkeypatch: pytest.MonkeyPatch, now: datetime) -> tuple:
    """The rule that fires on one acme request, and how many rules the registry looked at to find
    it: every rule any attribute of which is read, whatever the registry reads it for."""
    seen: set[str] = set()

    def spy(rule: Rule, name: str) -> object:
        seen.add(object.__getattribute__(rule, "id"))
        return object.__getattribute__(rule, name)

    with monkeypatch.context() as patched:
        patched.setattr(Rule, "__getattribute__", spy)
        firing = fire(registry, now=now)
    return firing.spec["respond"] if firing else None, len(seen)


def test_a_request_examines_no_spent_expired_or_other_clients_rule(new_registry, monkeypatch):
    later = NOW + timedelta(seconds=1)
    own = (
        {"match": {"method": "GET"}, "respond": {"status": 500}},
        {"match": {"clientId": "acme"}, "skip": 1, "respond": {"status": 429}},
    )
    alone, crowded = new_registry(0), new_registry(0, max_finished=10_000, max_active=10_000)
    # 10,000 rules that cannot fire on an acme request: spent, expired or another client's, each
    # kind both scoped to acme and not.
    for index in range(2000):
        crowded.add(
            RULE.load({"times": 1, **({"match": {"clientId": "acme"}} if index % 2 else {}), **ERROR}), NOW
        )
        assert fire(crowded) is not None
    for index in range(2000):
        scope = {"match": {"clientId": "acme"}} if index % 2 else {}
        crowded.add(RULE.load({"ttl": 1000, **scope, **ERROR}), NOW)
    for index in range(6000):
        crowded.add(RULE.load({"match": {"clientId": f"other-{index}"}, **ERROR}), NOW)
    for registry in (alone, crowded):
        for spec in own:
            registry.add(RULE.load(spec), NOW)
        fire(registry, now=later)  # the first request after the expiry moves the expired rules out, once

    assert rules_examined(crowded, monkeypatch, later) == rules_examined(alone, monkeypatch, later)
    assert rules_examined(alone, monkeypatch, later) == ({"status": 429}, 2)
    assert len(crowded.reports(later)) == 10_002  # the finished rules are still listed


# --- delays, noise and the firing -------------------------------------------------------------


# --- delays, noise and the firing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "cap_ms", "seconds"),
    [(None, 10_000, 0.0), ({"fixed": 250}, 10_000, 0.25), ({"fixed": 0}, 10_000, 0.0),
     ({"fixed": 5000}, 1200, 1.2), ({"uniform": {"lower": 40, "upper": 40}}, 10_000, 0.04),
     ({"uniform": {"lower": 3000, "upper": 4000}}, 100, 0.1),
     ({"lognormal": {"median": 5000, "sigma": 0}}, 1200, 1.2)],
    ids=["none", "fixed", "fixed-zero", "fixed-capped", "uniform-degenerate", "uniform-capped",
         "lognormal-capped"],
)  # fmt: skip
def test_delays_are_in_seconds_and_cut_at_the_cap(registry_with, delay, cap_ms, seconds):
    spec = {**ERROR, **({"delay": delay} if delay else {})}
    registry = registry_with(spec)

    assert registry.fire(facts(), NOW, cap_ms).delay == seconds


def test_a_uniform_delay_stays_within_its_bounds_and_varies(registry_with):
    registry = registry_with({"delay": {"uniform": {"lower": 10, "upper": 50}}, "seed": 3})

    delays = [fire(registry).delay for _ in range(200)]

    assert all(0.010 <= delay <= 0.050 for delay in delays)
    assert min(delays) < 0.015
    assert max(delays) > 0.045
    fresh = registry_with({"delay": {"uniform": {"lower": 10, "upper": 50}}, "seed": 3})
    assert [fire(fresh).delay for _ in range(200)] == delays


def test_a_lognormal_delay_follows_its_seed_and_is_cut_at_the_cap(registry_with):
    spec = {"delay": {"lognormal": {"median": 100, "sigma": 2}}, "seed": 11}
    first, second = registry_with(spec), registry_with(spec)

    delays = [first.fire(facts(), NOW, 300).delay for _ in range(100)]

    assert delays == [second.fire(facts(), NOW, 300).delay for _ in range(100)]
    assert all(0 < delay <= 0.3 for delay in delays)
    assert 0.3 in delays
    assert min(delays) < 0.1


def test_noise_is_64_bytes_and_seeded(registry_with):
    spec = {"fault": {"type": "RANDOM_DATA_THEN_CLOSE"}, "seed": 4}

    first, second = fire(registry_with(spec)), fire(registry_with(spec))
    registry = registry_with(spec)
    one, two = fire(registry), fire(registry)

    assert len(first.noise) == 64
    assert first.noise == second.noise == one.noise
    assert two.noise != one.noise


def test_the_firing_carries_the_rule_and_its_journal_entry(registry_with):
    registry = registry_with({"match": {"clientId": "acme"}, "respond": {"status": 429}, "times": 3})

    firing = fire(registry)

    assert (firing.rule_id, firing.when, firing.hits, firing.remaining, firing.delay) == (
        "f1",
        "before",
        1,
        2,
        0.0,
    )
    assert firing.spec["respond"] == {"status": 429}
    assert firing.journal() == {"id": "f1", "when": "before", "hits": 1, "remaining": 2}


def test_the_journal_of_an_unlimited_rule_has_no_remaining(registry_with):
    registry = registry_with({"when": "after", **ERROR})

    assert fire(registry).journal() == {"id": "f1", "when": "after", "hits": 1, "remaining": None}


@pytest.mark.parametrize(
    ("spec", "when"),
    [({"respond": {"status": 503}}, "before"),
     ({"delay": {"fixed": 10}}, "before"),
     ({"fault": {"type": "CONNECTION_RESET_BY_PEER"}}, "before"),
     ({"fault": {"type": "HANG"}}, "before"),
     ({"fault": {"type": "TRUNCATED_RESPONSE"}}, "after"),
     ({"fault": {"type": "DRIBBLE"}}, "after"),
     ({"respond": {"status": 503}, "when": "after"}, "after"),
     ({"fault": {"type": "EMPTY_RESPONSE"}, "when": "after"}, "after"),
     ({"fault": {"type": "DRIBBLE"}, "when": "after"}, "after")],
    ids=["respond", "delay", "reset", "hang", "truncated", "dribble", "respond-after", "empty-after",
         "dribble-explicit"],
)  # fmt: skip
def test_when_defaults_to_before_except_for_response_shaping_faults(registry_with, spec, when):
    registry = registry_with(spec)

    assert registry.report("f1", NOW)["when"] == when
    assert fire(registry).when == when


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_requests_consume_a_rule_exactly(registry_with):
    registry = registry_with({"match": {"clientId": "acme"}, "times": 50, **ERROR})
    threads, per_thread = 8, 100
    firings: list[Firing] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        mine = [firing for _ in range(per_thread) if (firing := fire(registry)) is not None]
        with lock:
            firings.extend(mine)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can, to expose any race
    try:
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    finally:
        sys.setswitchinterval(interval)

    assert len(firings) == 50
    assert sorted(firing.hits for firing in firings) == list(range(1, 51))
    assert sorted(firing.remaining for firing in firings) == list(range(50))
    assert counters(registry) == (50, 50, 0, "spent")


# --- the bound on active rules, and globs compiled once ----------------------------------------


def test_at_most_max_active_rules_are_active_and_finished_ones_make_room(registry_with):
    registry = registry_with({"times": 1, **ERROR}, {"ttl": 1000, **ERROR})
    registry.max_active = 2

    with pytest.raises(
        Conflict, match=r"holds 2 active fault rules, as many as SANDBOX_MAX_FAULT_RULES \(2\)"
    ):
        registry.add(RULE.load(ERROR), NOW)
    fire(registry)  # spends f1
    third = registry.add(RULE.load(ERROR), NOW)
    with pytest.raises(Conflict):
        registry.add(RULE.load(ERROR), NOW)
    fourth = registry.add(RULE.load(ERROR), NOW + timedelta(seconds=1))  # f2 expired

    assert (third["id"], fourth["id"]) == ("f3", "f4")
    assert [(r["id"], r["state"]) for r in registry.reports(NOW + timedelta(seconds=1))] == [
        ("f1", "spent"), ("f2", "expired"), ("f3", "active"), ("f4", "active"),
    ]  # fmt: skip


def test_a_rules_globs_are_compiled_when_it_is_added_not_per_request(registry_with, monkeypatch):
    compiled: list[str] = []
    real = faults.glob
    monkeypatch.setattr(faults, "glob", lambda pattern: compiled.append(pattern) or real(pattern))
    registry = registry_with({"match": {"path": "/acme/*", "headers": {"X-Case": "a*"}}, **ERROR})

    fired = fired_ids(registry, 5, facts(headers=Headers({"X-Case": "abc"})))

    assert fired == ["f1"] * 5
    assert compiled == ["/acme/*", "a*"]


# --- body matchers --------------------------------------------------------------------------

CREATE = {"Emails": [{"EmailAddress": "x@example.com", "IsDefault": True}], "Rank": 2, "Note": None}


@pytest.mark.parametrize(
    ("body_match", "body", "fires"),
    [
        ({"/Emails/0/EmailAddress": "x@example.com"}, CREATE, True),
        ({"/Emails/0/EmailAddress": "y@example.com"}, CREATE, False),
        ({"/Emails/0/EmailAddress": "x@example.com"}, None, False),
        ({"/Emails/0/IsDefault": True}, CREATE, True),
        ({"/Emails/0/IsDefault": 1}, CREATE, False),
        ({"/Rank": 2.0}, CREATE, True),
        ({"/Rank": True}, {"Rank": 1}, False),
        ({"/Rank": "2"}, CREATE, False),
        ({"/Note": None}, CREATE, True),
        ({"/Note": None}, {}, False),
        ({"/Emails/0": {"EmailAddress": "x@example.com", "IsDefault": True}}, CREATE, True),
        ({"/Emails/0": {"EmailAddress": "x@example.com"}}, CREATE, False),
        ({"/Emails": [{"EmailAddress": "x@example.com", "IsDefault": True}]}, CREATE, True),
        ({"/Emails/1/EmailAddress": "x@example.com"}, CREATE, False),
        ({"/Emails/-": "x"}, CREATE, False),
        ({"/Emails/0/EmailAddress/0": "x"}, CREATE, False),
        ({"/0": "x"}, "xyz", False),
        ({"/0": "x"}, ["x"], True),
        ({"/a~1b/~0": 1}, {"a/b": {"~": 1}}, True),
        ({"/Emails/0/EmailAddress": "x@example.com", "/Rank": 3}, CREATE, False),
        ({"/Emails/0/EmailAddress": "x@example.com", "/Rank": 2}, CREATE, True),
    ],
    ids=[
        "value-hit", "value-miss", "no-parsed-body", "boolean-hit", "number-is-not-boolean",
        "number-by-value", "boolean-is-not-number", "string-is-not-number", "null-hit", "absent-is-not-null",
        "object-hit", "object-must-be-whole", "array-hit", "index-past-the-end", "end-of-array",
        "no-step-into-a-string", "a-string-document", "an-array-document", "escapes", "one-of-two-misses",
        "both-hold",
    ],
)  # fmt: skip
def test_a_body_matcher_holds_when_the_value_at_its_pointer_is_equal_as_json(
    registry_with, body_match, body, fires
):
    registry = registry_with({"match": {"body": body_match}, **ERROR})

    assert (fire(registry, facts(body=body)) is not None) == fires


def test_the_body_is_read_only_for_a_rule_whose_other_criteria_hold_and_once(registry_with):
    registry = registry_with(
        {"match": {"method": "GET", "body": {"/a": 1}}, **ERROR},
        {"match": {"body": {"/a": 2}}, **ERROR},
        {"match": {"body": {"/b": 2}}, **ERROR},
    )
    reads: list[str] = []

    def counted(method: str) -> RequestFacts:
        return RequestFacts(
            method, "/acme/Profile", None, "acme", Headers(), lambda: reads.append(method) or {"b": 2}
        )

    firing = fire(registry, counted("POST"))

    assert (firing.rule_id, reads) == ("f3", ["POST"])
    assert (
        fire(registry_with({"match": {"method": "GET", "body": {"/a": 1}}, **ERROR}), counted("PUT")) is None
    )
    assert reads == ["POST"]


# --- near misses ------------------------------------------------------------------------------


def near_miss_of(registry: Registry, request: RequestFacts) -> dict | None:
    """The near miss of ``request`` once the registry fired no rule on it."""
    assert fire(registry, request) is None
    return request.near_miss()


def test_the_near_miss_is_the_rule_with_the_fewest_unmet_criteria(registry_with):
    registry = registry_with(
        {"match": {"method": "GET", "path": "/beta/*", "operation": "get_profile"}, **ERROR},
        {"match": {"method": "PUT", "headers": {"X-Case": "a*", "X-Other": "*"}, "body": {"/a": 1}}, **ERROR},
        {"match": {"path": "/acme/*", "headers": {"X-Case": "a*"}, "body": {"/a": 1, "/b": 2}}, **ERROR},
    )

    missed = near_miss_of(registry, facts(headers=Headers({"X-Case": "b"}), body={"a": 2, "b": 2}))

    assert missed == {"rule": "f3", "unmet": ["headers.X-Case", "body./a"]}


def test_of_rules_as_near_the_first_added_is_the_near_miss_scoped_or_not(registry_with):
    registry = registry_with(
        {"match": {"clientId": "acme", "method": "PUT", "path": "/x"}, **ERROR},
        {"match": {"operation": "get_profile"}, **ERROR},
        {"match": {"clientId": "acme", "method": "GET"}, **ERROR},
        {"match": {"clientId": "beta"}, **ERROR},
    )

    assert near_miss_of(registry, facts()) == {"rule": "f2", "unmet": ["operation"]}


def test_no_near_miss_without_rules_or_when_a_rule_matched_and_let_the_request_pass(registry_with):
    assert near_miss_of(registry_with(), facts()) is None
    assert (
        near_miss_of(registry_with({"match": {"clientId": "beta", "method": "GET"}, **ERROR}), facts())
        is None
    )
    skipping = registry_with(
        {"match": {"method": "GET"}, **ERROR}, {"match": {"method": "POST"}, "skip": 1, **ERROR}
    )
    assert near_miss_of(skipping, facts()) is None
    losing = registry_with({"match": {"method": "GET"}, **ERROR}, {"probability": 0, **ERROR})
    assert near_miss_of(losing, facts()) is None
    spent = registry_with({"times": 1, **ERROR}, {"match": {"method": "GET"}, **ERROR})
    assert fire(spent) is not None
    assert near_miss_of(spent, facts()) == {"rule": "f2", "unmet": ["method"]}


def test_an_expired_rule_is_no_near_miss(registry_with):
    registry = registry_with({"match": {"method": "GET"}, "ttl": 1000, **ERROR})

    assert near_miss_of(registry, facts()) == {"rule": "f1", "unmet": ["method"]}
    request = facts()
    assert fire(registry, request, NOW + timedelta(seconds=1)) is None
    assert request.near_miss() is None


def test_a_near_miss_looks_at_the_first_50_rules_a_request_was_held_against(registry_with):
    far = {"match": {"method": "GET", "path": "/nowhere"}, **ERROR}
    registry = registry_with(*[far] * 50, {"match": {"method": "GET"}, **ERROR})

    request = facts()
    missed = near_miss_of(registry, request)
    registry.delete("f1")

    assert (missed, len(request.held)) == ({"rule": "f1", "unmet": ["method", "path"]}, 50)
    assert near_miss_of(registry, facts()) == {"rule": "f51", "unmet": ["method"]}
