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
from datetime import datetime, timedelta
from http import HTTPStatus
from random import Random
from typing import Any

from flask import Flask, Response, current_app, g, request
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from . import connection, exchange, journal
from .clock import current_clock
from .errors import NotFound, VendorError, invalid
from .profiles import timestamp
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
    sigma = fields.Float(required=True, validate=validate.Range(min=0))


class DelaySchema(Strict):
    """Milliseconds: ``fixed``, ``uniform`` {lower, upper}, or ``lognormal`` {median, sigma}."""

    fixed = fields.Integer(validate=validate.Range(min=0))
    uniform = fields.Nested(UniformSchema)
    lognormal = fields.Nested(LognormalSchema)

    @validates_schema
    def _exactly_one(self, data: dict, **kwargs: Any) -> None:
        if len(data) != 1:
            raise ValidationError("Give exactly one of fixed, uniform or lognormal.")


class RespondSchema(Strict):
    status = fields.Integer(required=True, validate=validate.Range(min=100, max=599))
    body = fields.Raw(allow_none=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String())


class ConnectionFaultSchema(Strict):
    type = fields.String(required=True, validate=validate.OneOf(CONNECTION_FAULTS))
    chunks = fields.Integer(load_default=4, validate=validate.Range(min=1, max=1000))
    duration = fields.Integer(load_default=1000, validate=validate.Range(min=0))


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
    expiresAt = fields.AwareDateTime()
    ttl = fields.Integer(validate=validate.Range(min=1))

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
    headers: Mapping[str, str]


@dataclass
class Rule:
    """A fault rule with its lifetime counters."""

    id: str
    spec: dict
    created: datetime
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
        headers = {name.lower(): value for name, value in facts.headers.items()}
        return (
            ("method" not in match or facts.method in {m.upper() for m in match["method"]})
            and ("path" not in match or fnmatch.fnmatchcase(facts.path, match["path"]))
            and ("operation" not in match or facts.operation == match["operation"])
            and ("clientId" not in match or facts.client_id == match["clientId"])
            and all(
                fnmatch.fnmatchcase(headers.get(name.lower(), ""), pattern) and name.lower() in headers
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
            rule = Rule(rule_id, spec, now, Random(seed), expires=expires)
            self._rules[rule_id] = rule
            return rule.report(now)

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

    def fire(self, facts: RequestFacts, now: datetime) -> Rule | None:
        """The first live rule that fires on ``facts``, its counters updated; None if none does."""
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
                return rule
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
    rule = current_faults().fire(_facts(), current_clock().now())
    if rule is None:
        return None
    g.fault = rule
    journal.note(fault={"id": rule.id, "when": rule.when, "hits": rule.hits, "remaining": rule.remaining()})
    if rule.when != "before":
        return None
    # Without an error, the view is skipped all the same when the connection breaks: a stand-in
    # response, of which only the status line is ever sent (MALFORMED_RESPONSE_CHUNK).
    return _act(rule, Response(status=200) if "fault" in rule.spec else None)


def _after(response: Response) -> Response:
    rule = g.get("fault")
    if rule is None or rule.when != "after":
        return response
    return _act(rule, response)


def _act(rule: Rule, response: Response | None) -> Response | None:
    """Carry out ``rule`` on ``response``: delay it, replace it by an error, or mark the
    connection for the middleware to break."""
    _pause(rule)
    if "respond" in rule.spec:
        return _error_response(rule.spec["respond"])
    if "fault" in rule.spec:
        _break_connection(rule)
    return response


def _pause(rule: Rule) -> None:
    delay = rule.spec.get("delay")
    if not delay:
        return
    if "fixed" in delay:
        millis = delay["fixed"]
    elif "uniform" in delay:
        millis = rule.rng.uniform(delay["uniform"]["lower"], delay["uniform"]["upper"])
    else:
        millis = rule.rng.lognormvariate(math.log(delay["lognormal"]["median"]), delay["lognormal"]["sigma"])
    time.sleep(min(millis, current_app.config["MAX_DELAY_MS"]) / 1000)


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


def _break_connection(rule: Rule) -> None:
    request.environ[ENVIRON_KEY] = rule
    if rule.spec["fault"]["type"] != "DRIBBLE":
        journal.note(dropped=True)


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
        rule = environ.get(ENVIRON_KEY)
        if rule is None:
            start_response(captured["status"], captured["headers"])
            return result
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return connection.carry_out(
            rule.spec["fault"],
            environ,
            start_response,
            captured["status"],
            captured["headers"],
            body,
            rule.rng,
            self.cap,
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
