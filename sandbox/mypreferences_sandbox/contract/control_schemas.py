"""The control plane's payloads: fault rules, reset, clock, state and journal filters, as marshmallow schemas.

Unlike the vendor's shapes, these refuse unknown fields: a typo in a fault rule is a 400, never a
rule that silently matches everything. As there, a rule enforced beyond a field's validators is
stated beside it for the OpenAPI document (field metadata, a schema's ``json_schema``); a bound the
configuration sets is a field's ``cap``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from wsgiref.util import is_hop_by_hop

from jsonpointer import JsonPointer, JsonPointerException  # type: ignore[import-untyped]
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from .errors import invalid
from .moments import EARLIEST, LATEST, RANGE, SAFE_YEARS, within_range
from .schemas import ImportedProfile, Items, reject_constant

# What a 400 says of a control payload a schema refuses (the vendor's says what its stack says).
PAYLOAD_INVALID = "The control payload is invalid."
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


class Whole(fields.Integer):
    """An integer never rounded: ``1.5`` is an error (marshmallow's Integer makes it 1), ``3.0`` is 3
    (JSON does not tell them apart), and text such as ``"3"`` is refused unless ``text`` is set."""

    def __init__(self, *, text: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        if isinstance(value, str) and not (self.text and re.fullmatch(r"[+-]?[0-9]+", value)):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


# Globs (a rule's path and header values, the journal's path and warning filters) are compiled
# once each, by ``glob``: fnmatch's own functions would keep every distinct pattern in a cache of
# 32,768, and a long pattern costs milliseconds and kilobytes to compile.
MAX_GLOB = 1000


def glob(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled as ``fnmatch.fnmatchcase`` reads it (match with ``.match``)."""
    return re.compile(fnmatch.translate(pattern))


def _usable_glob(pattern: str) -> None:
    if len(pattern) > MAX_GLOB:
        raise ValidationError(f"A glob has at most {MAX_GLOB} characters; this one has {len(pattern)}.")
    try:
        glob(pattern)
    except (re.error, RecursionError, OverflowError) as error:  # none known; refused, never a 500
        raise ValidationError(f"The glob cannot be compiled: {error}.") from None


class Glob(fields.String):
    """A glob: at most ``MAX_GLOB`` characters, and one that compiles."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=_usable_glob, **kwargs)


# --- body matchers -------------------------------------------------------------------------

# A fault rule's match.body and the journal's body filter: a JSON Pointer (RFC 6901) and the JSON
# value a request's parsed body must hold there. A few of them, each pointer bounded, so that a
# request costs a rule or a filter a few short walks.
MAX_BODY_MATCHERS = 10
MAX_POINTER = 1000


def _usable_pointer(pointer: str) -> None:
    if not pointer.startswith("/"):
        raise ValidationError("A JSON Pointer starts with '/', such as /Emails/0/EmailAddress.")
    if len(pointer) > MAX_POINTER:
        raise ValidationError(
            f"A JSON Pointer has at most {MAX_POINTER} characters; this one has {len(pointer)}."
        )
    try:
        JsonPointer(pointer)
    except JsonPointerException as error:
        raise ValidationError(f"Not a JSON Pointer: {error}; write '~' as ~0 and '/' as ~1.") from None


def _few_body_matchers(matchers: Sized) -> None:
    if len(matchers) > MAX_BODY_MATCHERS:
        raise ValidationError(f"At most {MAX_BODY_MATCHERS} body matchers, not {len(matchers)}.")


class BodyCondition(fields.Field[tuple[str, Any]]):
    """A body filter of the journal, ``<pointer>=<value>`` (a string), loaded as (pointer, value):
    the pointer ends at the first ``=``, and the value is JSON if it parses as JSON, else the text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"type": "string"}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, Any]:
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        pointer, equals, expected = value.partition("=")
        if not equals:
            raise ValidationError(
                "Write body=<JSON Pointer>=<value>, such as body=/Emails/0/EmailAddress=ann@example.com."
            )
        _usable_pointer(pointer)
        try:
            # NaN and Infinity, which json reads and JSON has not, are refused: the value is text.
            return pointer, json.loads(expected, parse_constant=reject_constant)
        except RecursionError:
            raise ValidationError("The value is nested too deeply to read as JSON.") from None
        except ValueError:  # not JSON (JSONDecodeError is a ValueError): compared as text
            return pointer, expected


# --- fault rules ----------------------------------------------------------------------------


# RFC 9110 tokens (field names, methods), and values a server can send: Latin-1, no line breaks.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A rule looks at a few headers of a request; each is a glob compiled and kept with the rule.
MAX_MATCH_HEADERS = 10


def _token(what: str) -> Callable[[str], None]:
    """A validator of HTTP tokens, ``what`` naming them in the error. A whole-string match: a
    ``$`` would also let through a name ending in a line break, which splits the header."""

    def check(value: str) -> None:
        if TOKEN.fullmatch(value) is None:
            raise ValidationError(f"Not a valid {what}: a {what} is an HTTP token.")

    return check


HEADER_NAME = _token("header name")


def _few_match_headers(headers: dict) -> None:
    if len(headers) > MAX_MATCH_HEADERS:
        raise ValidationError(f"A rule matches on at most {MAX_MATCH_HEADERS} headers, not {len(headers)}.")


def _header_value(value: str) -> None:
    if any(char in value for char in "\r\n\0") or not _latin1(value):
        raise ValidationError("A header value must be Latin-1 text without line breaks.")


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _finite(value: Any) -> None:
    """Refuse a number JSON cannot write back (1e999 reads as infinity): the rule is answered and
    listed as JSON, and no parsed body could hold it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("The number is beyond what a JSON number can hold here (a double).")
    if isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            _finite(item)


class MatchSchema(Strict):
    method = Items(fields.String(validate=_token("method")))
    path = Glob()
    operation = fields.String()
    clientId = fields.String()
    headers = fields.Dict(
        keys=fields.String(validate=HEADER_NAME),
        values=Glob(),
        validate=_few_match_headers,
    )
    body = fields.Dict(
        keys=fields.String(validate=_usable_pointer),
        values=fields.Raw(allow_none=True, validate=_finite),
        validate=_few_body_matchers,
        metadata={
            "description": "JSON Pointer (RFC 6901) -> the JSON value the request's parsed body must "
            f"hold there (an XML body: its simple form). At most {MAX_BODY_MATCHERS}, each pointer "
            f"starting with `/`, at most {MAX_POINTER} characters.",
            "maxProperties": MAX_BODY_MATCHERS,
        },
    )

    @pre_load
    def _one_method(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("method"), str):
            return {**data, "method": [data["method"]]}
        return data


@dataclass(frozen=True)
class Cap:
    """A bound the configuration sets, as ``check_caps`` enforces it: at most ``setting``
    milliseconds, for the fault types ``only`` names (for every value when it is empty)."""

    setting: str
    only: str = ""

    def described(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What OpenAPI says of a field so bounded, under ``config``."""
        capped = f"At most SANDBOX_{self.setting} ({config[self.setting]} ms)."
        if self.only:
            return {"description": f"{self.only}: {capped}"}
        return {"maximum": config[self.setting], "description": capped}


DELAY_CAP = {"cap": Cap("MAX_DELAY_MS")}


class UniformSchema(Strict):
    # lower is capped too: it may not exceed upper.
    lower = Whole(required=True, validate=validate.Range(min=0), metadata=DELAY_CAP)
    upper = Whole(required=True, validate=validate.Range(min=0), metadata=DELAY_CAP)

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

    json_schema: ClassVar[dict[str, Any]] = {"minProperties": 1, "maxProperties": 1}

    fixed = Whole(validate=validate.Range(min=0), metadata=DELAY_CAP)
    uniform = fields.Nested(UniformSchema)
    lognormal = fields.Nested(LognormalSchema)

    @validates_schema
    def _exactly_one(self, data: dict, **kwargs: Any) -> None:
        if len(data) != 1:
            raise ValidationError("Give exactly one of fixed, uniform or lognormal.")


# What clients read of a response's head: Python's http.client at most 100 header lines of up to
# 65,536 bytes, .NET's HttpClient 64 KiB in all, Node's http 16 KiB in all. The injected headers
# get at most 50 lines and 8,190 bytes together (Apache's limit on one request header line), which
# leaves room for the sandbox's own headers under the strictest of those limits.
MAX_INJECTED_HEADERS = 50
MAX_INJECTED_HEADER_BYTES = 8190
# The server sets these from the body it sends: injected, they make the client misread the body.
FRAMING = ("content-length", "transfer-encoding")


def _injectable(headers: dict[str, str]) -> None:
    if len(headers) > MAX_INJECTED_HEADERS:
        raise ValidationError(f"A rule injects at most {MAX_INJECTED_HEADERS} headers, not {len(headers)}.")
    for name in headers:
        if name.lower() in FRAMING:
            raise ValidationError(
                f"{name} is set from the body sent: another value makes the client misread it "
                "(TRUNCATED_RESPONSE and MALFORMED_RESPONSE_CHUNK break the body on purpose)."
            )
        # PEP 3333 forbids them; gunicorn drops them, so the rule would not do what it says.
        if is_hop_by_hop(name):
            raise ValidationError(f"{name} is a hop-by-hop header, which a WSGI application may not send.")
    # Each header goes out as one "Name: value" line of Latin-1 bytes.
    lines = {name: len(name) + 2 + len(value) for name, value in headers.items()}
    for name, size in lines.items():
        if size > MAX_INJECTED_HEADER_BYTES:
            raise ValidationError(
                f"The line of header {name} takes {size} bytes; injected headers take at most "
                f"{MAX_INJECTED_HEADER_BYTES} bytes, as 'Name: value' lines, so that clients read them."
            )
    if sum(lines.values()) > MAX_INJECTED_HEADER_BYTES:
        raise ValidationError(
            f"The injected headers take {sum(lines.values())} bytes; at most {MAX_INJECTED_HEADER_BYTES}, "
            "as 'Name: value' lines, so that clients read them."
        )


class RespondSchema(Strict):
    # 1xx answers are interim: a server cannot end an exchange with one.
    status = Whole(required=True, validate=validate.Range(min=200, max=599))
    # Answered as JSON to the client, and listed as JSON by the control plane: finite numbers only.
    body = fields.Raw(allow_none=True, validate=_finite)
    headers = fields.Dict(
        keys=fields.String(validate=HEADER_NAME),
        values=fields.String(validate=_header_value),
        validate=_injectable,
    )


class ConnectionFaultSchema(Strict):
    type = fields.String(required=True, validate=validate.OneOf(CONNECTION_FAULTS))
    chunks = Whole(load_default=4, validate=validate.Range(min=1, max=1000))
    duration = Whole(
        load_default=1000,
        validate=validate.Range(min=0),
        metadata={"cap": Cap("MAX_DELAY_MS", only="DRIBBLE and HANG")},
    )


def _in_clock_range(moment: datetime) -> None:
    try:
        within_range(moment.astimezone(UTC))
    except (ValueError, OverflowError):
        raise ValidationError("The time is outside the clock's range, 1970 to 9000.") from None


# What JSON Schema can say of a moment in the clock's range: it compares no dates.
IN_CLOCK_RANGE = {
    "pattern": SAFE_YEARS,
    "description": f"In the clock's range, {RANGE}, else 400; the pattern admits the years 1971 to 8998.",
}


class RuleSchema(Strict):
    """A fault rule as the control plane takes it."""

    # What ``_coherent`` refuses.
    json_schema: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": [action]} for action in ("delay", "respond", "fault")],
        "not": {
            "anyOf": [
                {"required": ["respond", "fault"]},
                {"required": ["expiresAt", "ttl"]},
                {
                    "properties": {
                        "when": {"enum": ["before"]},
                        "fault": {"properties": {"type": {"enum": list(AFTER_ONLY)}}, "required": ["type"]},
                    },
                    "required": ["when", "fault"],
                },
            ]
        },
    }

    match = fields.Nested(MatchSchema, load_default=dict)
    when = fields.String(validate=validate.OneOf(WHEN))
    delay = fields.Nested(DelaySchema)
    respond = fields.Nested(RespondSchema)
    fault = fields.Nested(ConnectionFaultSchema)
    times = Whole(validate=validate.Range(min=1))
    skip = Whole(load_default=0, validate=validate.Range(min=0))
    probability = fields.Float(validate=validate.Range(min=0, max=1))
    seed = Whole()
    expiresAt = fields.AwareDateTime(validate=_in_clock_range, metadata=IN_CLOCK_RANGE)
    # At most ten years, in milliseconds: expiry stays within the clock's range.
    ttl = Whole(validate=validate.Range(min=1, max=10 * 365 * 86_400_000))

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
    json_schema: ClassVar[dict[str, Any]] = {"not": {"required": ["clientId", "seed"]}}

    clientId = fields.String(validate=validate.Length(min=1))
    seed = Whole(text=True)  # reset also reads its query parameters, which are text

    @validates_schema
    def _seed_is_server_wide(self, data: dict, **kwargs: Any) -> None:
        if "clientId" in data and "seed" in data:
            raise ValidationError(
                "The seed is server-wide: give it to a full reset, without clientId.", "seed"
            )


class ClockSchema(Strict):
    time = fields.DateTime(required=True, metadata=IN_CLOCK_RANGE)


class AdvanceSchema(Strict):
    # At most the clock's whole range, 1970 to 9000: anything longer leaves it whatever the start.
    seconds = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=int((LATEST - EARLIEST).total_seconds())),
        metadata={"description": f"The clock must stay in its range, {RANGE}, else 400."},
    )


# A clientId a vendor path can name: one non-empty path segment, not the control prefix.
# What a vendor path can name: a URL segment of at most 260 characters (IIS's UrlSegmentMaxLength),
# no control character (IIS refuses them in a URL), not the control plane's, not "." or "..".
CLIENT_ID = validate.Regexp(
    r"^(?!(?:_sandbox|\.|\.\.)\Z)[^/\ufffd\x00-\x1f\x7f]{1,260}\Z",
    error=(
        "Not a usable clientId: 1 to 260 characters, no '/' or control character, "
        "not '.', '..' or '_sandbox'."
    ),
)


class StateSchema(Strict):
    """A state document: each client's profiles, and each account's configuration (its kinds of
    types: ``{"AlternateIdTypes": ["CRM", {"Name": "Web", "Description": "...", "Locales": {...}}]}``)."""

    # Each profile is loaded on its own, as an ImportedProfile, so that every error can be named by
    # client and index: here it is Raw, read as one.
    clients = fields.Dict(
        keys=fields.String(validate=CLIENT_ID),
        values=fields.List(fields.Raw(metadata={"read_as": ImportedProfile})),
        load_default=dict,
    )
    accounts = fields.Dict(keys=fields.String(validate=CLIENT_ID), values=fields.Dict(), load_default=dict)


class RequestFilterSchema(Strict):
    clientId = fields.String()
    method = fields.String()
    operation = fields.String(
        metadata={"description": "An operation's name, as entries give it, such as create_profile."}
    )
    path = Glob(metadata={"description": f"A glob on the path (at most {MAX_GLOB} characters)."})
    status = fields.Integer()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    warning = Glob(
        metadata={
            "description": "A glob matched against each warning line (`X-Sandbox-Warning`); an entry "
            "matches if any of its warnings does. `*`: the requests that drew any warning. At most "
            f"{MAX_GLOB} characters."
        }
    )
    body = fields.List(
        BodyCondition(),
        validate=_few_body_matchers,
        metadata={
            "description": "`<JSON Pointer>=<value>`, such as `/Emails/0/EmailAddress=ann@example.com`: "
            "the entry's `bodyJson` holds the value at the pointer (which ends at the first `=`). "
            'The value is JSON if it parses as JSON (`42`, `true`, `"42"`), else the text itself. '
            f"Repeat it for more (at most {MAX_BODY_MATCHERS}, all required to hold); each pointer "
            f"has at most {MAX_POINTER} characters."
        },
    )
    limit = fields.Integer(validate=validate.Range(min=1))


# --- what the control plane answers (each view's answer is dumped through its schema) -------
# Each field always sent is ``required``; the others are left out when they do not apply.

# A moment as the sandbox writes it (ISO 8601 in UTC, with milliseconds): text it sends as it is.
MOMENT = {"format": "date-time"}


class Health(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))
    version = fields.String(required=True)
    store = fields.String(required=True, validate=validate.OneOf(["memory", "redis"]))


class ResetReport(Schema):
    reset = fields.String(required=True, metadata={"description": "`all`, or the clientId."})


class ConnectionFaultReport(ConnectionFaultSchema):
    """A connection fault as a rule's report shows it: its loaded defaults always there."""

    chunks = Whole(required=True)
    duration = Whole(required=True)


# A fault rule as reported: its id, what was asked (the rule, less its ttl and expiresAt), when it
# acts, what it did, and what remains. A rule's loaded defaults (match, skip, a fault's chunks and
# duration) are always there.
FaultReport = Schema.from_dict(
    {
        "id": fields.String(required=True),
        **{
            name: field
            for name, field in RuleSchema._declared_fields.items()
            if name not in ("when", "ttl", "expiresAt")
        },
        "match": fields.Nested(MatchSchema, required=True),
        "skip": Whole(required=True),
        "fault": fields.Nested(ConnectionFaultReport),
        "when": fields.String(
            required=True,
            validate=validate.OneOf(WHEN),
            metadata={
                "description": "As given; else `after` for a fault that shapes the response "
                f"({', '.join(AFTER_ONLY)}), `before` for any other rule."
            },
        ),
        "expiresAt": fields.String(
            required=True, allow_none=True, metadata={**MOMENT, "description": "null: never."}
        ),
        "matched": fields.Integer(
            required=True, metadata={"description": "Matching requests seen, skipped ones included."}
        ),
        "hits": fields.Integer(required=True, metadata={"description": "Times the rule fired."}),
        "remaining": fields.Integer(
            required=True, allow_none=True, metadata={"description": "null: no limit."}
        ),
        "state": fields.String(required=True, validate=validate.OneOf(["active", "spent", "expired"])),
    },
    name="FaultReport",
)


# Why an entry's body has no parsed form (an empty body needs none, and has no reason).
UNPARSED = ("truncated", "malformed", "not JSON or XML", "withheld")
# A near miss looks at most at this many of the active rules a request was held against: its
# cost stays bounded however many rules are active.
NEAR_MISS_RULES = 50


class Firing(Schema):
    """The rule that fired on a request: its hits then, and what remained."""

    id = fields.String(required=True)
    when = fields.String(required=True, validate=validate.OneOf(WHEN))
    hits = fields.Integer(required=True)
    remaining = fields.Integer(required=True, allow_none=True, metadata={"description": "null: no limit."})


class NearMiss(Schema):
    rule = fields.String(required=True, metadata={"description": "The id of the closest active rule."})
    unmet = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Its criteria the request did not meet: `method`, `path`, `operation`, "
            "`headers.<name>`, `body.<pointer>`."
        },
    )


class JournalEntry(Schema):
    """One vendor request as the journal keeps it."""

    id = fields.Integer(required=True)
    time = fields.String(required=True, metadata=MOMENT)
    method = fields.String(required=True)
    path = fields.String(required=True)
    operation = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The operation's name, as `match.operation` takes it; null: no route."},
    )
    clientId = fields.String(required=True, allow_none=True)
    query = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Credentials redacted."},
    )
    body = fields.String(required=True)
    bodyTruncated = fields.Boolean(required=True)
    bodyJson = fields.Raw(
        allow_none=True,
        metadata={
            "description": "The body parsed, when it was kept whole: a JSON body's value, or an XML "
            "body's simple form (`{root: {child: text, repeated: [...]}}`). Absent otherwise."
        },
    )
    bodyNotParsed = fields.String(
        validate=validate.OneOf(UNPARSED),
        metadata={"description": "Why a non-empty body has no `bodyJson`."},
    )
    status = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: a connection fault."}
    )
    durationMs = fields.Float(required=True)
    profileId = fields.Integer()
    error = fields.Dict()
    conflict = fields.Dict()
    fault = fields.Nested(Firing)
    nearMiss = fields.Nested(
        NearMiss,
        metadata={
            "description": "No rule fired: the closest active rule (fewest unmet criteria, then the "
            f"oldest) of the first {NEAR_MISS_RULES} the request was held against, and what it missed."
        },
    )
    warnings = fields.List(fields.String())
    cut = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "How many `headers`, `query` parameters and `modelState` keys were left "
            "out, past SANDBOX_MAX_JOURNAL_ITEMS each; absent when none was."
        },
    )


class Count(Schema):
    count = fields.Integer(required=True)


class ImportReport(Schema):
    imported = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    accounts = fields.List(
        fields.String(), required=True, metadata={"description": "The accounts configured."}
    )


class AccountsReport(Schema):
    accounts = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        required=True,
        metadata={"description": "Each account's configured kinds."},
    )


class ClockReport(Schema):
    now = fields.String(required=True, metadata=MOMENT)
    frozen = fields.Boolean(required=True)
