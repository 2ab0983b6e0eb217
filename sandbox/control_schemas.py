"""The control plane's payloads: fault rules, reset, clock, state and journal filters, as marshmallow schemas.

Unlike the vendor's shapes, these refuse unknown fields: a typo in a fault rule is a 400, never a
rule that silently matches everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from .clock import within_range
from .errors import invalid
from .schemas import Items

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


class Strict(Schema):
    """Base of the sandbox's own payloads: unknown fields are errors."""

    class Meta:
        unknown = RAISE


# --- fault rules ----------------------------------------------------------------------------


class MatchSchema(Strict):
    method = Items(fields.String())
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


# --- reset, clock, state, journal ----------------------------------------------------------


class ResetSchema(Strict):
    clientId = fields.String(validate=validate.Length(min=1))
    seed = fields.Integer()

    @validates_schema
    def _seed_is_server_wide(self, data: dict, **kwargs: Any) -> None:
        if "clientId" in data and "seed" in data:
            raise ValidationError(
                "The seed is server-wide: give it to a full reset, without clientId.", "seed"
            )


class ClockSchema(Strict):
    time = fields.DateTime(required=True)


class AdvanceSchema(Strict):
    # At most the clock's whole range, 1970 to 9000: anything longer leaves it whatever the start.
    seconds = fields.Float(required=True, validate=validate.Range(min=0, max=(9000 - 1970) * 366 * 86_400))


# A clientId a vendor path can name: one non-empty path segment, not the control prefix.
CLIENT_ID = validate.Regexp(r"^(?!(?:_sandbox|\.|\.\.)$)[^/\ufffd]+$", error="Not a usable clientId.")


class StateSchema(Strict):
    """A state document: each client's profiles, and each account's configuration (its kinds of
    types: ``{"AlternateIdTypes": ["CRM", {"Name": "Web", "Description": "...", "Locales": {...}}]}``)."""

    clients = fields.Dict(
        keys=fields.String(validate=CLIENT_ID), values=fields.List(fields.Raw()), load_default=dict
    )
    accounts = fields.Dict(keys=fields.String(validate=CLIENT_ID), values=fields.Dict(), load_default=dict)


class RequestFilterSchema(Strict):
    clientId = fields.String()
    method = fields.String()
    path = fields.String()
    status = fields.Integer()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    warning = fields.String(
        metadata={
            "description": "A glob matched against each warning line (`X-Sandbox-Warning`); an entry "
            "matches if any of its warnings does. `*`: the requests that drew any warning."
        }
    )
    limit = fields.Integer(validate=validate.Range(min=1))


# --- what the control plane answers (documented; the views build these) ---------------------


class Health(Schema):
    status = fields.String(validate=validate.OneOf(["ok"]))
    version = fields.String()


class ResetReport(Schema):
    reset = fields.String(metadata={"description": "`all`, or the clientId."})


# A fault rule as reported: what was asked (the rule, less its ttl), what it did, and what remains.
FaultReport = Schema.from_dict(
    {
        **{
            name: field
            for name, field in RuleSchema._declared_fields.items()
            if name not in ("ttl", "expiresAt")
        },
        "id": fields.String(),
        "expiresAt": fields.String(allow_none=True),
        "matched": fields.Integer(metadata={"description": "Matching requests seen, skipped ones included."}),
        "hits": fields.Integer(metadata={"description": "Times the rule fired."}),
        "remaining": fields.Integer(allow_none=True, metadata={"description": "null: no limit."}),
        "state": fields.String(validate=validate.OneOf(["active", "spent", "expired"])),
    },
    name="FaultReport",
)


class JournalEntry(Schema):
    """One vendor request as the journal keeps it."""

    id = fields.Integer()
    time = fields.DateTime()
    method = fields.String()
    path = fields.String()
    clientId = fields.String(allow_none=True)
    query = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    headers = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "Credentials redacted."}
    )
    body = fields.String()
    bodyTruncated = fields.Boolean()
    status = fields.Integer(allow_none=True, metadata={"description": "null: a connection fault."})
    durationMs = fields.Float()
    profileId = fields.Integer()
    error = fields.Dict()
    conflict = fields.Dict()
    fault = fields.Dict()
    warnings = fields.List(fields.String())


class Count(Schema):
    count = fields.Integer()


class ImportReport(Schema):
    imported = fields.Dict(keys=fields.String(), values=fields.Integer())
    accounts = fields.List(fields.String(), metadata={"description": "The accounts configured."})


class AccountsReport(Schema):
    accounts = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        metadata={"description": "Each account's configured kinds."},
    )


class ClockReport(Schema):
    now = fields.DateTime()
    frozen = fields.Boolean()
