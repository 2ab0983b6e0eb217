"""Fault rules and their registry: which vendor requests a rule matches, its counters and lifetime.

A rule fires on a matching request (after skipping its first ``skip`` matches, with its
``probability``, until it has fired ``times`` times or expired), at most one rule per request:
the first in creation order that fires. Matching and consumption happen under one lock, so
concurrent requests consume a rule exactly. How a firing is carried out on a response or a socket
is the pipeline's business; this module knows nothing of HTTP.
"""

from __future__ import annotations

import fnmatch
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random
from typing import Protocol

from .clock import timestamp
from .control_schemas import AFTER_ONLY
from .errors import NotFound


class Headers(Protocol):
    """Request headers looked up by name, ignoring case (as werkzeug's ``Headers`` do)."""

    def get(self, key: str) -> str | None:
        """The value of header ``key``, or None."""


@dataclass(frozen=True)
class RequestFacts:
    """What a rule can match a request on."""

    method: str
    path: str
    operation: str | None
    client_id: str | None
    headers: Headers


@dataclass
class Rule:
    """A fault rule with its lifetime counters."""

    id: str
    spec: dict
    rng: Random
    matched: int = 0
    hits: int = 0
    expires: datetime | None = field(default=None)

    @property
    def when(self) -> str:
        """``before`` or ``after`` the operation (response-shaping faults: after)."""
        return self.spec.get("when") or (
            "after" if self.spec.get("fault", {}).get("type") in AFTER_ONLY else "before"
        )

    def remaining(self) -> int | None:
        """How many more times the rule may fire (None: no limit)."""
        times = self.spec.get("times")
        return None if times is None else max(times - self.hits, 0)

    def state(self, now: datetime) -> str:
        """``active``, ``spent`` (fired ``times`` times) or ``expired``."""
        if self.expires is not None and now >= self.expires:
            return "expired"
        if "times" in self.spec and self.hits >= self.spec["times"]:
            return "spent"
        return "active"

    def accepts(self, facts: RequestFacts) -> bool:
        """Whether every criterion of the rule's ``match`` holds for the request."""
        match = self.spec["match"]
        return (
            ("method" not in match or facts.method in {m.upper() for m in match["method"]})
            and ("path" not in match or fnmatch.fnmatchcase(facts.path, match["path"]))
            and ("operation" not in match or facts.operation == match["operation"])
            and ("clientId" not in match or facts.client_id == match["clientId"])
            and all(  # werkzeug's Headers look names up ignoring case
                (value := facts.headers.get(name)) is not None and fnmatch.fnmatchcase(value, pattern)
                for name, pattern in match.get("headers", {}).items()
            )
        )

    def report(self, now: datetime) -> dict:
        """The rule as the control plane shows it: what was asked, what it did, what remains."""
        spec = {key: value for key, value in self.spec.items() if key not in ("expiresAt", "ttl")}
        return {
            "id": self.id,
            **spec,
            "when": self.when,
            "expiresAt": timestamp(self.expires) if self.expires else None,
            "matched": self.matched,
            "hits": self.hits,
            "remaining": self.remaining(),
            "state": self.state(now),
        }


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


def _delay_ms(delay: dict | None, rng: Random, cap_ms: int) -> float:
    """A delay drawn from the rule's distribution, in milliseconds, cut at the cap."""
    if not delay:
        return 0
    if "fixed" in delay:
        millis = delay["fixed"]
    elif "uniform" in delay:
        millis = rng.uniform(delay["uniform"]["lower"], delay["uniform"]["upper"])
    else:
        millis = rng.lognormvariate(math.log(delay["lognormal"]["median"]), delay["lognormal"]["sigma"])
    return min(millis, cap_ms)


class FaultRegistry:
    """Every fault rule, in creation order."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._next_id = 1
        self.seed = seed

    def add(self, spec: dict, now: datetime) -> dict:
        """Add a validated rule; its random choices follow its ``seed`` (default: from the sandbox's)."""
        with self._lock:
            rule_id = f"f{self._next_id}"
            self._next_id += 1
            expires = spec.get("expiresAt") or (
                now + timedelta(milliseconds=spec["ttl"]) if "ttl" in spec else None
            )
            seed = spec.get("seed", f"{self.seed}:{rule_id}")
            rule = Rule(rule_id, spec, Random(seed), expires=expires)
            report = rule.report(now)  # before storing it: a rule that cannot be reported is not kept
            self._rules[rule_id] = rule
            return report

    def reports(self, now: datetime, client_id: str | None = None) -> list[dict]:
        """Every rule (or those scoped to ``client_id``), reported."""
        with self._lock:
            return [rule.report(now) for rule in self._scoped(client_id)]

    def report(self, rule_id: str, now: datetime) -> dict:
        """One rule, reported; 404 if unknown."""
        with self._lock:
            return self._get(rule_id).report(now)

    def delete(self, rule_id: str) -> None:
        """Remove one rule; 404 if unknown."""
        with self._lock:
            del self._rules[self._get(rule_id).id]

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Remove every rule, or those scoped to ``client_id``; a full reset restarts the ids and
        takes ``seed``, if given, as the seed of the rules to come."""
        with self._lock:
            for rule in list(self._scoped(client_id)):
                del self._rules[rule.id]
            if client_id is None:
                self._next_id = 1
                self.seed = self.seed if seed is None else seed

    def fire(self, facts: RequestFacts, now: datetime, cap_ms: int) -> Firing | None:
        """The first live rule that fires on ``facts``: its counters updated, and every random
        choice it makes for this request drawn now, under the lock, so a seeded rule repeats
        itself even under concurrency. None if no rule fires."""
        with self._lock:
            for rule in self._rules.values():
                if rule.state(now) != "active" or not rule.accepts(facts):
                    continue
                rule.matched += 1
                if rule.matched <= rule.spec["skip"]:
                    continue
                if "probability" in rule.spec and rule.rng.random() >= rule.spec["probability"]:
                    continue
                rule.hits += 1
                return Firing(
                    rule.id, rule.when, rule.spec, rule.hits, rule.remaining(),
                    delay=_delay_ms(rule.spec.get("delay"), rule.rng, cap_ms) / 1000,
                    noise=rule.rng.randbytes(64),
                )  # fmt: skip
            return None

    def _scoped(self, client_id: str | None) -> Iterable[Rule]:
        return [
            r
            for r in self._rules.values()
            if client_id is None or r.spec["match"].get("clientId") == client_id
        ]

    def _get(self, rule_id: str) -> Rule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise NotFound(f"No fault rule '{rule_id}' exists.") from None
