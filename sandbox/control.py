"""The control plane under ``/_sandbox``: health, reset, fault rules, the request journal, state and clock.

Every payload is JSON. With ``SANDBOX_CONTROL_TOKEN`` set, every call but health needs
``Authorization: Bearer <token>``; with ``SANDBOX_CONTROL=false`` only health answers.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from . import formats, profiles, schemas
from .auth import current_authority
from .clock import current_clock, timestamp
from .errors import BadRequest, NotFound, Unauthorized, VendorError, invalid
from .faults import RULE, check_caps, current_faults
from .journal import current_journal, matcher
from .profiles import Account
from .store import current_store

bp = Blueprint("control", __name__, url_prefix="/_sandbox")


class ResetSchema(schemas.Strict):
    clientId = fields.String(validate=validate.Length(min=1))
    seed = fields.Integer()

    @validates_schema
    def _seed_is_server_wide(self, data: dict, **kwargs: Any) -> None:
        if "clientId" in data and "seed" in data:
            raise ValidationError(
                "The seed is server-wide: give it to a full reset, without clientId.", "seed"
            )


class ClockSchema(schemas.Strict):
    time = fields.DateTime(required=True)


class AdvanceSchema(schemas.Strict):
    seconds = fields.Float(required=True, validate=validate.Range(min=0))


class StateSchema(schemas.Strict):
    # A clientId a vendor path can name: one non-empty path segment, not the control prefix.
    clients = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^(?!_sandbox$)[^/]+$", error="Not a usable clientId.")),
        values=fields.List(fields.Raw()),
        required=True,
    )


class RequestFilterSchema(schemas.Strict):
    clientId = fields.String()
    method = fields.String()
    path = fields.String()
    status = fields.Integer()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    limit = fields.Integer(validate=validate.Range(min=1))


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False), status, headers=dict(headers or {}), mimetype="application/json"
    )


def _body() -> Any:
    """The JSON body of a control call ({} when empty); 400 if it is not JSON."""
    raw = request.get_data(cache=True)
    return formats.parse_json(raw, current_app.config["MAX_NESTING_DEPTH"]) if raw.strip() else {}


def _payload(schema: Schema, data: Any = None) -> dict:
    """A control payload (the JSON body, or ``data``) validated by ``schema``; 400 naming each problem."""
    data = _body() if data is None else data
    try:
        return schema.load(data)
    except ValidationError as error:
        raise BadRequest(
            "The control payload is invalid.", model_state=dict(schemas.model_state(error.messages))
        ) from None


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
def health() -> Response:
    """Always 200 while the server runs: ``{"status": "ok", "version": ...}``."""
    return _json({"status": "ok", "version": metadata.version("mypreferences-sandbox")})


@bp.post("/reset")
def reset() -> Response:
    """Reset everything (profiles, ProfileIds, fault rules, journal, clock; ``seed`` reseeds), or,
    with ``clientId``, only that client's profiles, fault rules and journal entries."""
    body = _body()
    if not isinstance(body, Mapping):
        raise invalid("body", "Expected a JSON object.")
    options = _payload(ResetSchema(), {**request.args.to_dict(), **body})
    client_id = options.get("clientId")
    current_store().reset(client_id)
    current_faults().clear(client_id, reseed=options.get("seed"))
    current_journal().clear(client_id)
    if client_id is None:
        current_clock().release()
        current_authority().forget_tokens()
    return _json({"reset": client_id or "all"})


# --- fault rules ----------------------------------------------------------------------------


@bp.post("/faults")
def add_fault() -> Response:
    """Add a fault rule: 201 with the rule as reported (its id, hits, remaining)."""
    spec = _payload(RULE)
    check_caps(spec, current_app.config["MAX_DELAY_MS"])
    operation = spec["match"].get("operation")
    if operation is not None and operation not in _operations():
        raise invalid(
            "match.operation",
            f"Unknown operation '{operation}'; use one of {', '.join(sorted(_operations()))}.",
        )
    report = current_faults().add(spec, current_clock().now())
    return _json(report, 201, {"Location": url_for(".get_fault", rule_id=report["id"], _external=True)})


def _operations() -> set[str]:
    """The vendor operations a rule can name: the API's view names (``create_profile``, ...)."""
    return {
        endpoint.rpartition(".")[2] for endpoint in current_app.view_functions if endpoint.startswith("api.")
    }


@bp.get("/faults")
def list_faults() -> Response:
    """Every rule (``?clientId=``: those scoped to it), in the order they are tried."""
    return _json(current_faults().reports(current_clock().now(), request.args.get("clientId")))


@bp.get("/faults/<rule_id>")
def get_fault(rule_id: str) -> Response:
    """One rule; 404 if unknown."""
    return _json(current_faults().report(rule_id, current_clock().now()))


@bp.delete("/faults/<rule_id>")
def delete_fault(rule_id: str) -> Response:
    """Remove one rule: 204; 404 if unknown."""
    current_faults().delete(rule_id)
    return Response(status=204)


@bp.delete("/faults")
def clear_faults() -> Response:
    """Remove every rule (``?clientId=``: those scoped to it): 204."""
    current_faults().clear(request.args.get("clientId"))
    return Response(status=204)


# --- the journal ----------------------------------------------------------------------------


def _filters() -> tuple[Any, int | None]:
    options = _payload(RequestFilterSchema(), request.args.to_dict())
    limit = options.pop("limit", None)
    options["client_id"] = options.pop("clientId", None)
    return matcher(**options), limit


@bp.get("/requests")
def list_requests() -> Response:
    """Journal entries, oldest first, filtered by ``clientId``, ``method``, ``path`` (a glob),
    ``status``, ``since``, ``until``; ``limit`` keeps the newest ones."""
    matches, limit = _filters()
    entries = current_journal().entries(matches)[-limit if limit else None :]
    return _json([{key: value for key, value in entry.items() if key != "moment"} for entry in entries])


@bp.get("/requests/count")
def count_requests() -> Response:
    """How many journal entries match the same filters: ``{"count": N}``."""
    matches, _ = _filters()
    return _json({"count": current_journal().count(matches)})


@bp.delete("/requests")
def clear_requests() -> Response:
    """Forget the journal (``?clientId=``: that client's entries): 204."""
    current_journal().clear(request.args.get("clientId"))
    return Response(status=204)


# --- state ----------------------------------------------------------------------------------


@bp.get("/state")
def export_state() -> Response:
    """The profiles of every client (``?clientId=``: one) as ``{"clients": {clientId: [...]}}``."""
    return _json({"clients": current_store().export(request.args.get("clientId"))})


@bp.post("/state")
def import_state() -> Response:
    """Replace the profiles of each client in a state document; 400 naming every invalid field,
    409 for a ProfileId or AlternateId used twice. Nothing changes on an error."""
    document = _payload(StateSchema())
    current_store().replace_clients(read_clients(document["clients"], current_app.config))
    return _json({"imported": {client: len(items) for client, items in document["clients"].items()}})


IMPORTED = schemas.ImportedProfile()


def read_clients(clients: Mapping[str, list], config: Mapping[str, Any]) -> dict[str, list[dict]]:
    """Validate the profiles of a state document into their stored form; 400 with every error."""
    errors: dict[str, Sequence[str]] = {}
    read: dict[str, list[dict]] = {}
    now = current_clock().now()  # one moment for the whole document
    for client_id, items in clients.items():
        editor = {
            "account": Account.from_config(config, client_id),
            "user": config["DEFAULT_USER"],
            "now": now,
        }
        read[client_id] = []
        for index, item in enumerate(items):
            try:
                data = schemas.load(IMPORTED, item)
            except BadRequest as error:
                prefix = f"clients.{client_id}[{index}]"
                errors.update(
                    {
                        f"{prefix}.{key}" if key != "body" else prefix: value
                        for key, value in error.model_state.items()
                    }
                )
                continue
            read[client_id].append(profiles.imported(data, **editor))
    if errors:
        raise BadRequest("The state document is invalid.", model_state=errors)
    return read


# --- clock ----------------------------------------------------------------------------------


def _clock_report() -> Response:
    clock = current_clock()
    return _json({"now": timestamp(clock.now()), "frozen": clock.frozen})


@bp.get("/clock")
def get_clock() -> Response:
    """The sandbox's time, and whether it is frozen."""
    return _clock_report()


@bp.put("/clock")
def set_clock() -> Response:
    """Freeze the clock at ``{"time": ISO 8601}`` (no zone: UTC)."""
    moment: datetime = _payload(ClockSchema())["time"]
    try:
        current_clock().set(moment)
    except ValueError as error:
        raise invalid("time", str(error)) from None
    return _clock_report()


@bp.post("/clock/advance")
def advance_clock() -> Response:
    """Move the clock by ``{"seconds": N}`` (a running clock is frozen first)."""
    seconds = _payload(AdvanceSchema())["seconds"]
    try:
        current_clock().advance(timedelta(seconds=seconds))
    except (ValueError, OverflowError) as error:
        raise invalid("seconds", str(error) or "The clock would leave its range, 1970 to 9000.") from None
    return _clock_report()


@bp.delete("/clock")
def release_clock() -> Response:
    """Let the clock follow real time again."""
    current_clock().release()
    return _clock_report()


def load_seed_file(app: Any, path: str) -> None:
    """Import the state document at ``path`` into ``app`` (ValueError, one line, if unusable)."""
    try:
        with open(path, encoding="utf-8") as file:
            document = StateSchema().load(json.load(file))
        with app.app_context():
            current_store().replace_clients(read_clients(document["clients"], app.config))
    except (OSError, ValueError, ValidationError) as error:
        raise ValueError(f"SANDBOX_SEED_FILE {path}: {error}") from None
    except VendorError as error:
        problems = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in error.model_state.items())
        raise ValueError(f"SANDBOX_SEED_FILE {path}: {error.message} {problems}".rstrip()) from None
