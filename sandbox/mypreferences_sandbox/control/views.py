"""The control plane under ``/_sandbox``: health, reset, fault rules, the request journal, state and clock.

Every payload is JSON. With ``SANDBOX_CONTROL_TOKEN`` set, every call but health needs
``Authorization: Bearer <token>``; with ``SANDBOX_CONTROL=false`` only health answers.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from marshmallow import Schema, ValidationError

from .. import parts
from ..contract import control_schemas as payloads
from ..contract import schemas
from ..contract.control_schemas import PAYLOAD_INVALID
from ..contract.errors import BadRequest, NotFound, Unauthorized, invalid
from ..contract.moments import timestamp
from ..contract.operations import (
    CONTROL_PREFIX,
    JSON_ONLY,
    Answer,
    Body,
    Query,
    operation_names,
)
from ..domain.accounts import KINDS, configured
from ..domain.documents import importer
from ..domain.journal import matcher
from ..http.exchange import Documented, body_stream, documented, json_payload, streamed_json
from ..wire.jsonstream import StateDocument

bp = Blueprint("control", __name__, url_prefix=CONTROL_PREFIX)

CLIENT = (Query("clientId", description="Only this client's."),)
CHANGES = dict.fromkeys((400, 401, 404))


def control(summary: str, answers: dict[int, Answer], **details: Any) -> Documented:
    """A control-plane endpoint's contract (by default, its errors are the plane's 401 and 404)."""
    return documented("control", summary, answers, **{"errors": dict.fromkeys((401, 404)), **details})


def _with_query(schema: Schema) -> dict:
    """A control payload whose members may also be given as query parameters, validated by ``schema``."""
    body = json_payload()
    if not isinstance(body, Mapping):
        raise invalid("body", "Expected a JSON object.")
    return schemas.load(schema, {**request.args.to_dict(), **body}, message=PAYLOAD_INVALID)


@bp.before_request
def guard() -> None:
    """Turned off: only health answers. Locked by a token: every call but health must carry it."""
    if request.endpoint == "control.health":
        return
    if not current_app.config["CONTROL"]:
        raise NotFound("The control plane is turned off (SANDBOX_CONTROL=false).")
    token = current_app.config["CONTROL_TOKEN"]
    # The f-string also serves a token of digits, which from_prefixed_env reads as a number.
    given = request.headers.get("Authorization", "").encode()
    if token is not None and not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise Unauthorized(
            "The control plane needs 'Authorization: Bearer <SANDBOX_CONTROL_TOKEN>'.",
            headers={"WWW-Authenticate": 'Bearer realm="mypreferences-sandbox"'},
        )


@bp.get("/health")
@control(
    "Health",
    {
        200: Answer(
            "While the server runs and its state can be reached (also with a token, also when turned off).",
            payloads.Health,
        )
    },
    errors={503: "A Redis store cannot be reached."},
    guarded=False,
)
def health() -> dict[str, str]:
    """200 while the server runs and its state can be reached: ``{"status": "ok", "version": ...,
    "store": "memory" or "redis"}``; 503 when its Redis cannot be reached."""
    parts.current().clock.now()  # in Redis, with a Redis store: reading it proves Redis is there
    store = "memory" if current_app.config["STORE"] == "memory" else "redis"
    return {"status": "ok", "version": metadata.version("mypreferences-sandbox"), "store": store}


@bp.post("/reset")
@control(
    "Reset everything, or one client",
    {200: Answer("What was reset: `all` or the clientId.", payloads.ResetReport)},
    errors=CHANGES,
    body=Body(payloads.ResetSchema, JSON_ONLY, required=False, reader=_with_query),
    query=CLIENT,
)
def reset(body: dict) -> dict[str, str]:
    """Reset everything (profiles, ProfileIds, fault rules, journal, clock, tokens; ``seed``
    reseeds), or, with ``clientId``, only that client's profiles, fault rules and journal entries."""
    parts.current().reset(body.get("clientId"), seed=body.get("seed"))
    return {"reset": body.get("clientId") or "all"}


# --- fault rules ----------------------------------------------------------------------------

REPORT = Answer("The rule.", payloads.FaultReport)
UNKNOWN_RULE = {404: "Unknown rule, or the control plane is off."}


@bp.post("/faults")
@control(
    "Add a fault rule",
    {
        201: Answer(
            "The rule as reported, with its id.", payloads.FaultReport, {"Location": "The rule's URL."}
        )
    },
    errors={**CHANGES, 409: "As many rules are active as SANDBOX_MAX_FAULT_RULES allows."},
    body=Body(payloads.RuleSchema, JSON_ONLY),
    produces={"ruleId": "$response.body#/id"},
)
def add_fault(body: dict) -> tuple[dict, int, dict[str, str]]:
    """Add a fault rule: 201 with the rule as reported (its id, hits, remaining). Its
    ``match.operation`` is a vendor view's name (``create_profile``); 409 when
    ``SANDBOX_MAX_FAULT_RULES`` rules are active already."""
    spec = body
    payloads.check_caps(spec, current_app.config["MAX_DELAY_MS"])
    _check_operation("match.operation", spec["match"].get("operation"), ("vendor",))
    sandbox = parts.current()
    report = sandbox.faults.add(spec, sandbox.clock.now())
    return report, 201, {"Location": url_for(".get_fault", rule_id=report["id"], _external=True)}


@bp.get("/faults")
@control(
    "List fault rules",
    {
        200: Answer(
            "Every rule, in the order they are tried.", {"type": "array", "items": payloads.FaultReport}
        )
    },
    query=CLIENT,
)
def list_faults() -> list[dict]:
    """Every rule (``?clientId=``: those scoped to it), in the order they are tried."""
    sandbox = parts.current()
    return sandbox.faults.reports(sandbox.clock.now(), request.args.get("clientId"))


@bp.get("/faults/<rule_id>")
@control("Get a fault rule", {200: REPORT}, errors={401: None, **UNKNOWN_RULE})
def get_fault(rule_id: str) -> dict:
    """One rule; 404 if unknown."""
    sandbox = parts.current()
    return sandbox.faults.report(rule_id, sandbox.clock.now())


@bp.delete("/faults/<rule_id>")
@control("Remove a fault rule", {204: Answer("Removed.")}, errors={401: None, **UNKNOWN_RULE})
def delete_fault(rule_id: str) -> None:
    """Remove one rule: 204; 404 if unknown."""
    parts.current().faults.delete(rule_id)


@bp.delete("/faults")
@control("Remove every fault rule, or a client's", {204: Answer("Removed.")}, query=CLIENT)
def clear_faults() -> None:
    """Remove every rule (``?clientId=``: those scoped to it): 204."""
    parts.current().faults.reset(request.args.get("clientId"))


# --- the journal ----------------------------------------------------------------------------


def _check_operation(path: str, operation: str | None, planes: tuple[str, ...]) -> None:
    """400 under ``path`` for an ``operation`` that is none of ``planes``' operations."""
    if operation is None:
        return
    known = set().union(*(operation_names(current_app.view_functions, plane) for plane in planes))
    if operation not in known:
        raise invalid(path, f"Unknown operation '{operation}'; use one of {', '.join(sorted(known))}.")


def _filters() -> tuple[Callable[[dict], bool], int | None]:
    """The journal filters of the query; 400 for a filter given twice."""
    schema = payloads.RequestFilterSchema()
    for name, values in request.args.lists():
        # body is the one filter that adds up (each must hold); any other given twice has no one
        # meaning, and reading the first alone would quietly drop the second.
        if name != "body" and name in schema.fields and len(values) > 1:
            raise invalid(name, f"The filter '{name}' is given twice; give it once.")
    query: dict[str, Any] = request.args.to_dict()
    if "body" in query:
        query["body"] = request.args.getlist("body")
    options = schemas.load(schema, query, message=PAYLOAD_INVALID)
    _check_operation("operation", options.get("operation"), ("vendor", "oauth"))
    limit = options.pop("limit", None)
    options["client_id"] = options.pop("clientId", None)
    return matcher(**options), limit


@bp.get("/requests")
@control(
    "Read the request journal",
    {200: Answer("Journal entries, oldest first.", {"type": "array", "items": payloads.JournalEntry})},
    errors=CHANGES,
    query=payloads.RequestFilterSchema,
)
def list_requests() -> list[dict]:
    """Journal entries, oldest first, filtered by ``clientId``, ``method``, ``operation``, ``path``
    (a glob), ``status``, ``since``, ``until``, ``warning`` (a glob any of an entry's warnings must
    match: ``*`` keeps the requests that drew a warning), ``body`` (``<JSON Pointer>=<value>``, its
    parsed body holds the value there; repeatable, all must hold); ``limit`` keeps the newest ones.
    Any filter but ``body`` given twice is a 400."""
    matches, limit = _filters()
    # Each entry's moment, which the filters compare, is no field of the entry sent.
    return parts.current().journal.entries(matches)[-limit if limit else None :]


@bp.get("/requests/count")
@control(
    "Count journal entries",
    {200: Answer("How many entries match.", payloads.Count)},
    errors=CHANGES,
    query=payloads.RequestFilterSchema,
)
def count_requests() -> dict[str, int]:
    """How many journal entries match the same filters (``warning=*``: how many drew a warning):
    ``{"count": N}``."""
    matches, _ = _filters()
    return {"count": parts.current().journal.count(matches)}


@bp.delete("/requests")
@control("Forget the journal, or a client's entries", {204: Answer("Forgotten.")}, query=CLIENT)
def clear_requests() -> None:
    """Forget the journal (``?clientId=``: that client's entries): 204."""
    parts.current().journal.reset(request.args.get("clientId"))


# --- state ----------------------------------------------------------------------------------


@bp.get("/state")
@control(
    "Export profiles and account configurations",
    {
        200: Answer(
            "The profiles as stored, and the accounts' configured types, per clientId.", payloads.StateSchema
        )
    },
    query=CLIENT,
)
def export_state() -> Response:
    """Every client's profiles (``?clientId=``: one's) and account configuration, as
    ``{"clients": {clientId: [...]}, "accounts": {clientId: {...}}}``: a document import takes back."""
    return streamed_json(parts.current().documents.export(request.args.get("clientId")))


@bp.post("/state")
@control(
    "Import profiles and account configurations",
    {200: Answer("How many profiles each client now has; the accounts configured.", payloads.ImportReport)},
    errors={
        **CHANGES,
        409: "A ProfileId or an AlternateId used twice; nothing changed.",
        413: "The document is larger than SANDBOX_MAX_IMPORT_BYTES.",
    },
    body=Body(payloads.StateSchema, JSON_ONLY),
    body_limit="MAX_IMPORT_BYTES",
)
def import_state() -> dict:
    """Replace the profiles of each client in a state document, and configure each account it
    names; 400 naming every invalid field, 409 for a ProfileId or AlternateId used twice. Nothing
    changes on an error."""
    document = StateDocument(body_stream(), current_app.config["MAX_NESTING_DEPTH"])
    sandbox = parts.current()
    editor_for = importer(current_app.config, sandbox.clock.now())
    report = sandbox.documents.apply(document.clients(), lambda: document.other, editor_for)
    current_app.extensions.get(parts.AFTER_IMPORT, lambda: None)()
    return report


@bp.get("/accounts")
@control(
    "Read account configurations",
    {200: Answer("Each account's configured kinds.", payloads.AccountsReport)},
    query=CLIENT,
)
def list_accounts() -> dict[str, dict]:
    """Each account's configured kinds of types (``?clientId=``: one's); kinds left open are not shown."""
    return {"accounts": parts.current().accounts.export(request.args.get("clientId"))}


@bp.put("/accounts/<client_id>")
@control(
    "Configure an account",
    {200: Answer("The account's configured kinds now.", payloads.AccountsReport)},
    errors=CHANGES,
    body=Body(
        {"type": "object", "description": "Kinds of types, as in a state document's accounts."}, JSON_ONLY
    ),
)
def configure_account(client_id: str) -> dict[str, dict]:
    """Configure the kinds a document names (``{"AlternateIdTypes": ["CRM"], "ConsentTypes": [...]}``):
    each replaces that kind, which is then closed (a body naming another type is a 404). 400 naming
    each key that is no kind, an unusable entry, and a clientId no vendor path can name."""
    body = json_payload()
    if not isinstance(body, Mapping):
        raise invalid("body", "Expected a JSON object.")
    # The account's other settings (DefaultLocale, ...) come from SANDBOX_ACCOUNTS only: this call
    # would drop them without a word.
    problems = {
        key: [f"'{key}' is not a kind of types; use one of {', '.join(KINDS)}."]
        for key in body
        if key not in KINDS
    }
    try:
        payloads.CLIENT_ID(client_id)
    except ValidationError as error:
        problems["clientId"] = list(error.messages)
    try:
        configured(body)
    except ValueError as error:
        problems["body"] = [str(error)]
    if problems:
        raise BadRequest(model_state=problems)
    accounts = parts.current().accounts
    accounts.configure(client_id, body)
    return {"accounts": accounts.export(client_id)}


# --- clock ----------------------------------------------------------------------------------

CLOCK = {200: Answer("The sandbox's time.", payloads.ClockReport)}


def _clock_report() -> dict[str, Any]:
    clock = parts.current().clock
    return {"now": timestamp(clock.now()), "frozen": clock.frozen}


@bp.get("/clock")
@control("Read the clock", CLOCK)
def get_clock() -> dict[str, Any]:
    """The sandbox's time, and whether it is frozen."""
    return _clock_report()


@bp.put("/clock")
@control("Set and freeze the clock", CLOCK, errors=CHANGES, body=Body(payloads.ClockSchema, JSON_ONLY))
def set_clock(body: dict) -> dict[str, Any]:
    """Freeze the clock at ``{"time": ISO 8601}`` (no zone: UTC)."""
    moment: datetime = body["time"]
    try:
        parts.current().clock.set(moment)
    except ValueError as error:
        raise invalid("time", str(error)) from None
    return _clock_report()


@bp.post("/clock/advance")
@control("Advance the clock", CLOCK, errors=CHANGES, body=Body(payloads.AdvanceSchema, JSON_ONLY))
def advance_clock(body: dict) -> dict[str, Any]:
    """Move the clock by ``{"seconds": N}`` (a running clock is frozen first)."""
    seconds = body["seconds"]
    try:
        parts.current().clock.advance(timedelta(seconds=seconds))
    except (ValueError, OverflowError):
        raise invalid("seconds", "The clock would leave its range, 1970 to 9000.") from None
    return _clock_report()


@bp.delete("/clock")
@control("Release the clock", CLOCK)
def release_clock() -> dict[str, Any]:
    """Let the clock follow real time again."""
    parts.current().clock.release()
    return _clock_report()
