"""Fault rules and their in-memory registry: which vendor requests a rule matches, its counters and lifetime.

A rule fires on a matching request (after skipping its first ``skip`` matches, with its
``probability``, until it has fired ``times`` times or expired), at most one rule per request:
the first in creation order that fires. A request no rule fired on tells its near miss: the
active rule it came closest to matching, and the criteria that rule missed. The rules' own logic
(criteria, skip, odds, draws, reports) is shared with the registry kept in Redis
(``redis.faults``). In this one, matching and consumption happen under one lock, so concurrent
requests consume a rule exactly. How a firing is carried out on a response or a socket is the
pipeline's business; this module knows nothing of HTTP.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from operator import attrgetter
from random import Random
from typing import Any, Protocol

from ..contract.control_schemas import AFTER_ONLY, NEAR_MISS_RULES, glob
from ..contract.errors import Conflict, NotFound
from ..contract.moments import EARLIEST, timestamp
from ..settings import DEFAULTS
from .matching import BodyMatcher


class Headers(Protocol):
    """Request headers looked up by name, ignoring case (as werkzeug's ``Headers`` do)."""

    def get(self, key: str) -> str | None:
        """The value of header ``key``, or None."""


def _no_body() -> None:
    return None


@dataclass(frozen=True, eq=False)
class RequestFacts:
    """What a rule can match a request on, and the rules it was held against.

    ``read_body`` gives the body's parsed form (None: it has none); it is called once, and only
    for a rule that matches on the body, so a request no such rule looks at is never parsed. The
    registries hold a request against its candidates in creation order, each through
    ``Rule.accepts``, which notes the first ``NEAR_MISS_RULES`` of them in ``held``: when none
    fires, they are every active rule the request could have fired, and its near miss is among them."""

    method: str
    path: str
    operation: str | None
    client_id: str | None
    headers: Headers
    read_body: Callable[[], Any] = _no_body
    held: list[Rule] = field(default_factory=list)

    @cached_property
    def body(self) -> Any:
        """The body's parsed form (None: it has none), read on first need."""
        return self.read_body()

    def near_miss(self) -> dict | None:
        """Of the rules the request was held against, the one it came closest to matching: its id
        and its unmet criteria, fewest first, the oldest of a tie. None if it was held against none,
        or if one matched it: that rule let it pass (its skip, its odds, or it was spent meanwhile),
        which its ``matched`` counter tells."""
        closest: tuple[Rule, list[str]] | None = None
        for rule in self.held:
            unmet = list(rule.criteria.unmet(self))
            if not unmet:
                return None
            if closest is None or len(unmet) < len(closest[1]):
                closest = (rule, unmet)
        return None if closest is None else {"rule": closest[0].id, "unmet": closest[1]}


@dataclass(frozen=True)
class Criteria:
    """A rule's ``match``, compiled once, when the rule is added: what each request is held against."""

    methods: frozenset[str] | None
    path: re.Pattern[str] | None
    operation: str | None
    client_id: str | None
    headers: tuple[tuple[str, re.Pattern[str]], ...]
    body: tuple[BodyMatcher, ...] = ()

    @classmethod
    def of(cls, match: dict) -> Criteria:
        """The criteria of a validated ``match``, its globs and JSON Pointers compiled."""
        return cls(
            frozenset(method.upper() for method in match["method"]) if "method" in match else None,
            glob(match["path"]) if "path" in match else None,
            match.get("operation"),
            match.get("clientId"),
            tuple((name, glob(pattern)) for name, pattern in match.get("headers", {}).items()),
            tuple(BodyMatcher.of(pointer, value) for pointer, value in match.get("body", {}).items()),
        )

    def accepts(self, facts: RequestFacts) -> bool:
        """Whether every criterion holds for the request, the body last: a request whose other
        criteria fail has its body left unparsed."""
        # What ``unmet`` says criterion by criterion, in one expression: every request is held
        # against each active rule of its client, and a generator costs several times as much.
        return (
            (self.methods is None or facts.method in self.methods)
            and (self.path is None or self.path.match(facts.path) is not None)
            and (self.operation is None or facts.operation == self.operation)
            and (self.client_id is None or facts.client_id == self.client_id)
            and all(  # werkzeug's Headers look names up ignoring case
                (value := facts.headers.get(name)) is not None and pattern.match(value) is not None
                for name, pattern in self.headers
            )
            and all(matcher.holds(facts.body) for matcher in self.body)
        )

    def unmet(self, facts: RequestFacts) -> Iterator[str]:
        """The criteria that do not hold for the request, named as a near miss names them."""
        if self.methods is not None and facts.method not in self.methods:
            yield "method"
        if self.path is not None and self.path.match(facts.path) is None:
            yield "path"
        if self.operation is not None and facts.operation != self.operation:
            yield "operation"
        if self.client_id is not None and facts.client_id != self.client_id:
            yield "clientId"
        for name, pattern in self.headers:
            value = facts.headers.get(name)
            if value is None or pattern.match(value) is None:
                yield f"headers.{name}"
        yield from (f"body.{matcher.pointer}" for matcher in self.body if not matcher.holds(facts.body))


@dataclass(frozen=True, eq=False)
class Rule:
    """A fault rule as added: its spec, criteria, expiry, place in creation order and random generator.

    The generator is the one part that changes, as the rule draws; the counters are the registry's
    (a ``Tally``), so that the registry in Redis holds them there."""

    id: str
    spec: dict
    rng: Random
    criteria: Criteria
    expires: datetime | None = None
    number: int = 0  # the order of creation

    @classmethod
    def of(
        cls, rule_id: str, number: int, spec: dict, criteria: Criteria, seed: int, expires: datetime | None
    ) -> Rule:
        """Rule ``rule_id`` of a validated spec, drawing from its own seed, else from ``seed`` and its id."""
        return cls(rule_id, spec, Random(spec.get("seed", f"{seed}:{rule_id}")), criteria, expires, number)

    @property
    def client_id(self) -> str | None:
        """The clientId the rule is scoped to (None: every client)."""
        return self.spec["match"].get("clientId")

    @property
    def when(self) -> str:
        """``before`` or ``after`` the operation (response-shaping faults: after)."""
        return self.spec.get("when") or (
            "after" if self.spec.get("fault", {}).get("type") in AFTER_ONLY else "before"
        )

    def remaining(self, hits: int) -> int | None:
        """How many more times the rule may fire after ``hits`` firings (None: no limit)."""
        times = self.spec.get("times")
        return None if times is None else max(times - hits, 0)

    def state(self, hits: int, now: datetime) -> str:
        """``active``, ``spent`` (fired ``times`` times) or ``expired``."""
        if self.expires is not None and now >= self.expires:
            return "expired"
        if "times" in self.spec and hits >= self.spec["times"]:
            return "spent"
        return "active"

    def accepts(self, facts: RequestFacts) -> bool:
        """Whether every criterion of the rule's ``match`` holds for the request, which notes the
        rule among those it was held against (the first ``NEAR_MISS_RULES``), for its near miss."""
        if len(facts.held) < NEAR_MISS_RULES:
            facts.held.append(self)
        return self.criteria.accepts(facts)

    def skips(self, matched: int) -> bool:
        """Whether the ``matched``-th matching request is one of those the rule lets pass."""
        return matched <= self.spec["skip"]

    def passes_odds(self) -> bool:
        """Whether the rule fires on a request past its skip: its ``probability`` drawn (none: always)."""
        return "probability" not in self.spec or self.rng.random() < self.spec["probability"]

    def firing(self, hits: int, cap_ms: int) -> Firing:
        """The rule firing for the ``hits``-th time, its delay and noise drawn now."""
        return Firing(
            self.id, self.when, self.spec, hits, self.remaining(hits),
            delay=_delay_ms(self.spec.get("delay"), self.rng, cap_ms) / 1000,
            noise=self.rng.randbytes(64),
        )  # fmt: skip

    def report(self, tally: Tally, now: datetime) -> dict:
        """The rule as the control plane shows it: what was asked, what it did, what remains."""
        spec = {key: value for key, value in self.spec.items() if key not in ("expiresAt", "ttl")}
        return {
            "id": self.id,
            **spec,
            "when": self.when,
            "expiresAt": timestamp(self.expires) if self.expires else None,
            "matched": tally.matched,
            "hits": tally.hits,
            "remaining": self.remaining(tally.hits),
            "state": self.state(tally.hits, now),
        }


@dataclass
class Tally:
    """A rule's counters: the matching requests it saw (skipped ones included), and its firings."""

    matched: int = 0
    hits: int = 0


@dataclass(frozen=True)
class Firing:
    """A rule firing on one request: what to do, its counters then, and its random draws."""

    rule_id: str
    when: str
    spec: dict
    hits: int
    remaining: int | None
    delay: float  # seconds, already capped
    noise: bytes  # random bytes for RANDOM_DATA_THEN_CLOSE and MALFORMED_RESPONSE_CHUNK

    def journal(self) -> dict:
        """What the journal records of the firing."""
        return {"id": self.rule_id, "when": self.when, "hits": self.hits, "remaining": self.remaining}


# The largest power of e a float holds (math.exp(710) overflows).
MAX_EXPONENT = 709.0


def _delay_ms(delay: dict | None, rng: Random, cap_ms: int) -> float:
    """A delay drawn from the rule's distribution, in milliseconds, cut at the cap."""
    if not delay:
        return 0
    if "fixed" in delay:
        millis = delay["fixed"]
    elif "uniform" in delay:
        millis = rng.uniform(delay["uniform"]["lower"], delay["uniform"]["upper"])
    else:
        # lognormvariate is exp(normalvariate(...)): drawn the same, but cut before exp, whose float
        # overflows past 709 (a median near 1e308 with a wide sigma), so the cap always applies.
        exponent = rng.normalvariate(math.log(delay["lognormal"]["median"]), delay["lognormal"]["sigma"])
        millis = math.exp(min(exponent, MAX_EXPONENT))
    return min(millis, cap_ms)


def expiry(spec: dict, now: datetime) -> datetime | None:
    """When a validated rule added at ``now`` expires: at ``expiresAt``, or ``ttl`` later (None: never)."""
    return spec.get("expiresAt") or (now + timedelta(milliseconds=spec["ttl"]) if "ttl" in spec else None)


def candidates(active: Mapping[str | None, Mapping[str, Rule]], client_id: str | None) -> Iterator[Rule]:
    """The rules of ``active`` a request of ``client_id`` may match, in creation order.

    ``active`` holds each clientId's rules (None: the unscoped ones) by id, in creation order. Lazy:
    the caller stops at the rule that fires, and only then may that rule leave its list."""
    unscoped = active.get(None)
    scoped = active.get(client_id) if client_id is not None else None
    if not scoped or not unscoped:
        return iter((scoped or unscoped or {}).values())
    return heapq.merge(unscoped.values(), scoped.values(), key=attrgetter("number"))


def too_many(active: int, max_active: int) -> Conflict:
    """The 409 of a rule added when ``active`` rules are active already."""
    return Conflict(
        f"The sandbox holds {active} active fault rules, as many as SANDBOX_MAX_FAULT_RULES "
        f"({max_active}) allows: delete some, or raise the setting."
    )


def unknown(rule_id: str) -> NotFound:
    """The 404 of a rule id no rule has."""
    return NotFound(f"No fault rule '{rule_id}' exists.")


def micros(moment: datetime) -> int:
    """``moment`` in whole microseconds since 1970: an exact key, where a float is not."""
    return (moment - EARLIEST) // timedelta(microseconds=1)


class FaultRegistryBase(ABC):
    """The fault rules of one sandbox, added, reported, removed and fired, kept by a subclass."""

    @abstractmethod
    def add(self, spec: dict, now: datetime) -> dict:
        """Add a validated rule; 409 if as many rules as allowed are active already."""

    @abstractmethod
    def reports(self, now: datetime, client_id: str | None = None) -> list[dict]:
        """Every rule kept (or those scoped to ``client_id``), reported."""

    @abstractmethod
    def report(self, rule_id: str, now: datetime) -> dict:
        """One rule, reported; 404 if unknown."""

    @abstractmethod
    def delete(self, rule_id: str) -> None:
        """Remove one rule; 404 if unknown."""

    @abstractmethod
    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Remove every rule (ids restart; ``seed`` seeds the rules to come), or those of ``client_id``."""

    @abstractmethod
    def fire(self, facts: RequestFacts, now: datetime, cap_ms: int) -> Firing | None:
        """The first live rule that fires on ``facts``, its counters updated; None if none fires."""


class FaultRegistry(FaultRegistryBase):
    """Every fault rule, in creation order: the active ones indexed by their ``match.clientId``, and
    the finished ones (spent or expired) kept for the listing, the last ``max_finished`` to finish;
    at most ``max_active`` active at once."""

    def __init__(
        self,
        seed: int,
        max_finished: int = DEFAULTS["MAX_FINISHED_FAULTS"],
        max_active: int = DEFAULTS["MAX_FAULT_RULES"],
    ) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self.seed = seed
        self.max_finished = max_finished
        self.max_active = max_active
        self._empty()

    def _empty(self) -> None:
        self._rules: dict[str, Rule] = {}  # every rule kept, in creation order: what is listed
        self._tallies: dict[str, Tally] = {}  # the counters of each rule kept
        # The rules that may still fire, by their match.clientId (None: every client's), each in
        # creation order; a request looks at its client's and the unscoped ones only. Ordered
        # dicts, because a plain dict's iteration steps over the slots of every rule taken out.
        self._active: dict[str | None, OrderedDict[str, Rule]] = {}
        self._finished: OrderedDict[str, Rule] = OrderedDict()  # in the order they finished
        # Heaps, so that finding the rules the clock has passed costs nothing per request:
        # active rules by expiry, soonest first; and rules finished by expiry, latest expiry first,
        # since a clock set back makes them active again, as their state has always said.
        # Entries of rules that have moved since are skipped when they surface.
        self._expiring: list[tuple[datetime, int, Rule]] = []
        self._expired: list[tuple[int, int, datetime, Rule]] = []

    def add(self, spec: dict, now: datetime) -> dict:
        """Add a validated rule; its random choices follow its ``seed`` (default: from the sandbox's).
        409 if ``max_active`` rules are active already."""
        # Compiled here, outside the lock: a long glob costs milliseconds, which no request waits for.
        criteria = Criteria.of(spec["match"])
        with self._lock:
            self._settle(now)
            active = len(self._rules) - len(self._finished)
            if active >= self.max_active:
                raise too_many(active, self.max_active)
            number = self._next_id
            self._next_id += 1
            rule = Rule.of(f"f{number}", number, spec, criteria, self.seed, expiry(spec, now))
            # Reported before it is stored: a rule that cannot be reported is not kept.
            tally = Tally()
            report = rule.report(tally, now)
            self._rules[rule.id] = rule
            self._tallies[rule.id] = tally
            self._active.setdefault(rule.client_id, OrderedDict())[rule.id] = rule
            if rule.expires is not None:
                heapq.heappush(self._expiring, (rule.expires, number, rule))
            self._settle(now)
            return report

    def reports(self, now: datetime, client_id: str | None = None) -> list[dict]:
        """Every rule kept (or those scoped to ``client_id``), reported."""
        with self._lock:
            self._settle(now)
            return [rule.report(self._tallies[rule.id], now) for rule in self._scoped(client_id)]

    def report(self, rule_id: str, now: datetime) -> dict:
        """One rule, reported; 404 if unknown."""
        with self._lock:
            self._settle(now)
            return self._get(rule_id).report(self._tallies[rule_id], now)

    def delete(self, rule_id: str) -> None:
        """Remove one rule; 404 if unknown."""
        with self._lock:
            self._remove(self._get(rule_id))

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Remove every rule, or those scoped to ``client_id``; a full reset restarts the ids and
        takes ``seed``, if given, as the seed of the rules to come."""
        with self._lock:
            if client_id is None:
                self._empty()
                self._next_id = 1
                self.seed = self.seed if seed is None else seed
                return
            for rule in self._scoped(client_id):
                self._remove(rule)

    def fire(self, facts: RequestFacts, now: datetime, cap_ms: int) -> Firing | None:
        """The first live rule that fires on ``facts``: its counters updated, and every random
        choice it makes for this request drawn now, under the lock, so a seeded rule repeats
        itself even under concurrency. None if no rule fires."""
        with self._lock:
            self._settle(now)
            for rule in candidates(self._active, facts.client_id):
                if not rule.accepts(facts):
                    continue
                tally = self._tallies[rule.id]
                tally.matched += 1
                if rule.skips(tally.matched) or not rule.passes_odds():
                    continue
                tally.hits += 1
                firing = rule.firing(tally.hits, cap_ms)
                if firing.remaining == 0:
                    self._finish(rule)
                return firing
            return None

    def _settle(self, now: datetime) -> None:
        """Move the rules whose expiry ``now`` has reached out of the active ones, and back those
        whose expiry it has not (the clock was set back), each once: no scan of the rules."""
        while self._expiring and self._expiring[0][0] <= now:
            expires, number, rule = heapq.heappop(self._expiring)
            if self._is_active(rule):
                self._finish(rule)
                heapq.heappush(self._expired, (-micros(expires), number, expires, rule))
        revived: list[Rule] = []
        while self._expired and -self._expired[0][0] > micros(now):
            _, number, expires, rule = heapq.heappop(self._expired)
            if self._finished.get(rule.id) is rule:
                del self._finished[rule.id]
                heapq.heappush(self._expiring, (expires, number, rule))
                revived.append(rule)
        for client_id in {rule.client_id for rule in revived}:
            # Back in its place in creation order; only a clock set back pays for this sort.
            active = self._active.setdefault(client_id, OrderedDict())
            active.update((rule.id, rule) for rule in revived if rule.client_id == client_id)
            self._active[client_id] = OrderedDict(sorted(active.items(), key=lambda item: item[1].number))
        # Entries of rules spent, deleted or dropped before they surfaced: forgotten once they
        # outnumber the rules kept, so that the heaps follow the rules kept, not every rule added.
        if len(self._expiring) + len(self._expired) > 2 * len(self._rules) + 64:
            self._expiring = [entry for entry in self._expiring if self._is_active(entry[2])]
            self._expired = [entry for entry in self._expired if self._finished.get(entry[3].id) is entry[3]]
            heapq.heapify(self._expiring)
            heapq.heapify(self._expired)

    def _is_active(self, rule: Rule) -> bool:
        active = self._active.get(rule.client_id)
        return active is not None and active.get(rule.id) is rule

    def _finish(self, rule: Rule) -> None:
        """Take a spent or expired rule out of the active ones; drop the oldest finished past the bound."""
        self._take_out_of_active(rule)
        self._finished[rule.id] = rule
        while len(self._finished) > self.max_finished:
            dropped, _ = self._finished.popitem(last=False)
            del self._rules[dropped], self._tallies[dropped]

    def _take_out_of_active(self, rule: Rule) -> None:
        active = self._active[rule.client_id]
        del active[rule.id]
        if not active:  # so that clientIds come and go without leaving a list each behind
            del self._active[rule.client_id]

    def _remove(self, rule: Rule) -> None:
        del self._rules[rule.id], self._tallies[rule.id]
        if self._finished.pop(rule.id, None) is None:
            self._take_out_of_active(rule)

    def _scoped(self, client_id: str | None) -> list[Rule]:
        return [r for r in self._rules.values() if client_id is None or r.client_id == client_id]

    def _get(self, rule_id: str) -> Rule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise unknown(rule_id) from None
