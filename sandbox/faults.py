"""Fault rules: which vendor requests they match, what happens to them, and how long they live.

A rule fires on a matching request (after skipping its first ``skip`` matches, with its
``probability``, until it has fired ``times`` times or expired), at most one rule per request:
the first in creation order that fires. Matching and consumption happen under one lock, so
concurrent requests consume a rule exactly. ``before`` the operation nothing is stored; ``after``
it the operation commits and the fault hits its response.
"""

from __future__ import annotations

import fnmatch
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from random import Random
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema
from werkzeug.datastructures import Headers

from . import connection, exchange, journal
from .clock import current_clock, timestamp, within_range
from .errors import NotFound, VendorError, invalid
from .schemas import Strict

WHEN = ("before", "after")
CONNECTION_FAULTS = (
    "CONNECTION_RESET_BY_PEER",
    "EMPTY_RESPONSE",
    "RANDOM_DATA_THEN_CLOSE",
    "MALFORMED_RESPONSE_CHUNK",
    "TRUNCATED_RESPONSE",
    "DRIBBLE",
    "HANG",
)
# These shape the real response, so they can only happen after the operation.
AFTER_ONLY = ("TRUNCATED_RESPONSE", "DRIBBLE")
ENVIRON_KEY = "sandbox.connection_fault"


# --- the rule document ----------------------------------------------------------------------


class MatchSchema(Strict):
    method = fields.List(fields.String())
    path = fields.String()
    operation = fields.String()
    clientId = fields.String()
    headers = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_load
    def _one_method(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("method"), str):
            return {**data, "method": [data["method"]]}
        return data


class UniformSchema(Strict):
    lower = fields.Integer(required=True, validate=validate.Range(min=0))
    upper = fields.Integer(required=True, validate=validate.Range(min=0))

    @validates_schema
    def _ordered(self, data: dict, **kwargs: Any) -> None:
        if data["lower"] > data["upper"]:
            raise ValidationError("lower must not exceed upper.", "lower")


class LognormalSchema(Strict):
    median = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))
    # Beyond 10 the distribution is all cap and no shape; larger sigmas overflow the sampling.
    sigma = fields.Float(required=True, validate=validate.Range(min=0, max=10))


class DelaySchema(Strict):
    """Milliseconds: ``fixed``, ``uniform`` {lower, upper}, or ``lognormal`` {median, sigma}."""

    fixed = fields.Integer(validate=validate.Range(min=0))
    uniform = fields.Nested(UniformSchema)
    lognormal = fields.Nested(LognormalSchema)

    @validates_schema
    def _exactly_one(self, data: dict, **kwargs: Any) -> None:
        if len(data) != 1:
            raise ValidationError("Give exactly one of fixed, uniform or lognormal.")


# RFC 9110 field names, and values a server can send: Latin-1, no line breaks.
HEADER_NAME = validate.Regexp(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$", error="Not a valid header name.")


def _header_value(value: str) -> None:
    if any(char in value for char in "\r\n\0") or not _latin1(value):
        raise ValidationError("A header value must be Latin-1 text without line breaks.")


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class RespondSchema(Strict):
    # 1xx answers are interim: a server cannot end an exchange with one.
    status = fields.Integer(required=True, validate=validate.Range(min=200, max=599))
    body = fields.Raw(allow_none=True)
    headers = fields.Dict(
        keys=fields.String(validate=HEADER_NAME), values=fields.String(validate=_header_value)
    )


class ConnectionFaultSchema(Strict):
    type = fields.String(required=True, validate=validate.OneOf(CONNECTION_FAULTS))
    chunks = fields.Integer(load_default=4, validate=validate.Range(min=1, max=1000))
    duration = fields.Integer(load_default=1000, validate=validate.Range(min=0))


def _in_clock_range(moment: datetime) -> None:
    try:
        within_range(moment.astimezone(UTC))
    except (ValueError, OverflowError):
        raise ValidationError("The time is outside the clock's range, 1970 to 9000.") from None


class RuleSchema(Strict):
    """A fault rule as the control plane takes it."""

    match = fields.Nested(MatchSchema, load_default=dict)
    when = fields.String(validate=validate.OneOf(WHEN))
    delay = fields.Nested(DelaySchema)
    respond = fields.Nested(RespondSchema)
    fault = fields.Nested(ConnectionFaultSchema)
    times = fields.Integer(validate=validate.Range(min=1))
    skip = fields.Integer(load_default=0, validate=validate.Range(min=0))
    probability = fields.Float(validate=validate.Range(min=0, max=1))
    seed = fields.Integer()
    expiresAt = fields.AwareDateTime(validate=_in_clock_range)
    # At most ten years, in milliseconds: expiry stays within the clock's range.
    ttl = fields.Integer(validate=validate.Range(min=1, max=10 * 365 * 86_400_000))

    @validates_schema
    def _coherent(self, data: dict, **kwargs: Any) -> None:
        if not any(key in data for key in ("delay", "respond", "fault")):
            raise ValidationError("A rule needs at least one of delay, respond or fault.")
        if "respond" in data and "fault" in data:
            raise ValidationError("A rule either responds with an error or breaks the connection, not both.")
        if "expiresAt" in data and "ttl" in data:
            raise ValidationError("Give expiresAt or ttl, not both.")
        if data.get("when") == "before" and data.get("fault", {}).get("type") in AFTER_ONLY:
            raise ValidationError(
                f"{data['fault']['type']} shapes the real response: it needs when 'after'.", "when"
            )


RULE = RuleSchema()


# --- rules and their registry ---------------------------------------------------------------


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

    def clear(self, client_id: str | None = None, *, reseed: int | None = None) -> None:
        """Remove every rule, or those scoped to ``client_id``; a full clear restarts the ids."""
        with self._lock:
            for rule in list(self._scoped(client_id)):
                del self._rules[rule.id]
            if client_id is None:
                self._next_id = 1
                self.seed = self.seed if reseed is None else reseed

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


def check_caps(spec: dict, cap_ms: int) -> None:
    """400 if a delay, dribble or hang the rule asks for exceeds the configured cap."""
    delay, fault = spec.get("delay", {}), spec.get("fault", {})
    asked = [
        ("delay.fixed", delay.get("fixed")),
        ("delay.uniform.upper", delay.get("uniform", {}).get("upper")),
        ("fault.duration", fault.get("duration") if fault.get("type") in ("DRIBBLE", "HANG") else None),
    ]
    for path, value in asked:
        if value is not None and value > cap_ms:
            raise invalid(path, f"{value} ms exceeds SANDBOX_MAX_DELAY_MS ({cap_ms} ms).")


# --- carrying faults out --------------------------------------------------------------------

# What the vendor's stack says for the statuses a test most often injects.
MESSAGES = {
    401: "Authorization has been denied for this request.",
    500: "An error has occurred.",
}


def _facts() -> RequestFacts:
    endpoint = request.endpoint or ""
    return RequestFacts(
        method=request.method,
        path=request.path,
        operation=endpoint.rpartition(".")[2] if "." in endpoint else None,
        client_id=(request.view_args or {}).get("client_id"),
        headers=request.headers,
    )


def _before() -> Response | None:
    if journal.is_control(request.path):
        return None
    firing = current_faults().fire(_facts(), current_clock().now(), current_app.config["MAX_DELAY_MS"])
    if firing is None:
        return None
    g.fault = firing
    journal.note(fault=firing.journal())
    if firing.when != "before":
        return None
    # Without an error, the view is skipped all the same when the connection breaks: a stand-in
    # response, of which only the status line is ever sent (MALFORMED_RESPONSE_CHUNK).
    return _act(firing, Response(status=200) if "fault" in firing.spec else None)


def _after(response: Response) -> Response:
    firing = g.get("fault")
    if firing is None or firing.when != "after":
        return response
    return _act(firing, response)


# _act's response: given one, it returns one; given None, maybe None.
MaybeResponse = TypeVar("MaybeResponse", bound=Response | None)


def _act(firing: Firing, response: MaybeResponse) -> Response | MaybeResponse:
    """Carry out a firing on ``response``: delay it, replace it by an error, or mark the
    connection for the middleware to break."""
    time.sleep(firing.delay)
    if "respond" in firing.spec:
        return _error_response(firing.spec["respond"])
    if "fault" in firing.spec:
        request.environ[ENVIRON_KEY] = firing
        if firing.spec["fault"]["type"] != "DRIBBLE":
            journal.note(dropped=True)
    return response


def _error_response(respond: dict) -> Response:
    """The injected error: the given body as it is, or the vendor's error in the negotiated format."""
    headers = respond.get("headers", {})
    status = respond["status"]
    if "body" not in respond:
        return exchange.render_error(
            VendorError(MESSAGES.get(status) or _phrase(status), status=status, headers=headers)
        )
    body = respond["body"]
    if isinstance(body, str):
        response = Response(body, status, content_type="text/plain; charset=utf-8")
    else:
        response = Response(json.dumps(body), status, content_type="application/json; charset=utf-8")
    response.headers.update(headers)
    return response


def _phrase(status: int) -> str:
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "The sandbox injected this error."


class ConnectionFaultMiddleware:
    """WSGI middleware that carries out the connection fault a rule left in the environ."""

    def __init__(self, app: Any, cap_ms: int) -> None:
        self.app = app
        self.cap = cap_ms / 1000

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        result = self.app(environ, capture)
        firing = environ.get(ENVIRON_KEY)
        if firing is None:
            start_response(captured["status"], captured["headers"])
            return result
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        status, headers = captured["status"], captured["headers"]
        return connection.carry_out(
            firing.spec["fault"], environ, start_response, status, headers, body, firing.noise, self.cap
        )


def init_app(app: Flask) -> None:
    """Give ``app`` its fault registry, the hooks that fire rules, and the connection middleware."""
    app.extensions["sandbox.faults"] = FaultRegistry(app.config["SEED"])
    app.before_request(_before)
    app.after_request(_after)
    app.wsgi_app = ConnectionFaultMiddleware(app.wsgi_app, app.config["MAX_DELAY_MS"])  # type: ignore[method-assign]


def current_faults() -> FaultRegistry:
    """The fault registry of the application handling the current request."""
    return current_app.extensions["sandbox.faults"]
