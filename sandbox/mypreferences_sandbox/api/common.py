"""What the vendor's views share: their URLs, their contracts' common parts, and who writes and when."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from .. import parts
from ..contract import schemas
from ..contract.errors import invalid
from ..contract.operations import Answer, Pair, Query
from ..domain.profiles import Account, Editor
from ..domain.service import AlternateId, ProfileService
from ..http.exchange import Documented, documented
from ..http.record import current_record
from ..wire.formats import NAMESPACE

PROFILES = "/<client:client_id>/Profile"
BY_ID = f"{PROFILES}/<int:profile_id>"
BY_ALTERNATE_ID = f"{PROFILES}/AlternateIdType/<alternate_id_type>/AlternateId/<alternate_id>"

WARNINGS = {"X-Sandbox-Warning": "One per thing the vendor might treat differently (a field ignored, ...)."}
WRITE_ERRORS = dict.fromkeys((400, 401, 403, 404, 406, 409, 413, 415))
READ_ERRORS = dict.fromkeys((400, 401, 403, 404, 406))
NOT_HELD = {404: "No active profile holds the AlternateId."}
ADDRESSED = Pair(
    "alternateIdPair",
    (
        Query(
            "alternateIdType",
            description="With alternateId: the active profile holding it (case ignored).",
            required=True,
        ),
        Query("alternateId", description="With alternateIdType.", required=True),
    ),
)
REQUIRED_ADDRESS = ADDRESSED.members
ALTERNATE_ID_QUERY = tuple(member.name for member in ADDRESSED.members)


def vendor(summary: str, answers: dict[int, Answer], **details: Any) -> Documented:
    """A vendor endpoint's contract, carried out: its body loaded, its answer dumped."""
    return documented("vendor", summary, answers, **details)


def wrapped(entry: type[schemas.Schema], root: str) -> dict:
    """A list answer, wrapped in XML in the ``root`` element."""
    return {"type": "array", "items": entry, "xml": {"name": root, "namespace": NAMESPACE, "wrapped": True}}


def editor(client_id: str) -> Editor:
    """Who writes and when, plus the clientId's account defaults."""
    config = current_app.config
    record = current_record()
    return Editor(
        account=Account.from_config(config, client_id),
        user=record.user or config["DEFAULT_USER"],
        now=parts.current().clock.now(),
        warnings=record.warnings,
    )


def service() -> ProfileService:
    """The profile service of the sandbox serving this request."""
    return parts.current().service


def about(profile: dict) -> dict:
    """``profile``, named on the request's record as the one the request is about."""
    current_record().profile_id = profile["ProfileId"]
    return profile


def flag(name: str, default: bool) -> bool:
    """A boolean query parameter; 400 for anything but true or false."""
    value = request.args.get(name)
    if value is None:
        return default
    if value.strip().lower() not in ("true", "false"):
        raise invalid(name, f"The value '{value}' is not valid for {name}; use true or false.")
    return value.strip().lower() == "true"


def alternate_id_query() -> AlternateId | None:
    """The AlternateId of ``?alternateIdType=...&alternateId=...``; None when neither is given."""
    kind, ident = (request.args.get(name) for name in ALTERNATE_ID_QUERY)
    if kind is None and ident is None:
        return None
    if not kind or not ident:
        missing = ALTERNATE_ID_QUERY[0] if not kind else ALTERNATE_ID_QUERY[1]
        raise invalid(missing, f"The {missing} query parameter is required with the other.")
    return AlternateId(kind, ident)


def required_alternate_id_query() -> AlternateId:
    """The AlternateId of ``?alternateIdType=...&alternateId=...``; 400 unless both are given."""
    addressed = alternate_id_query()
    if addressed is None:
        raise invalid("alternateIdType", "The alternateIdType and alternateId query parameters are required.")
    return addressed
