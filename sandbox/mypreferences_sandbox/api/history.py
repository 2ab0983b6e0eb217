"""The vendor's history endpoints: a profile's consent history and preference history, by ProfileId
or AlternateId, and its consent filters. Registered at both roots, like the Profile endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, request

from .. import parts
from ..contract import schemas
from ..contract.operations import Answer, Query
from ..domain.profiles import preferences_of
from ..domain.service import Target
from .common import (
    BY_ID,
    NOT_HELD,
    PROFILES,
    REQUIRED_ADDRESS,
    about,
    flag,
    required_alternate_id_query,
    service,
    vendor,
    wrapped,
)

bp = Blueprint("history_api", __name__)

# --- the contracts' common parts ------------------------------------------------------------

BY_ID_ERRORS = dict.fromkeys((401, 403, 404, 406))
BY_ALTERNATE_ID_ERRORS = {
    **BY_ID_ERRORS,
    400: "alternateIdType or alternateId is missing.",
    404: f"{NOT_HELD[404]} Strict mode: an unknown clientId.",
}
CONSENTS_ANSWER = Answer("The basic profile and its consent history.", schemas.ConsentHistory)
PREFERENCES_ANSWER = Answer(
    "Every change of the profile's preferences, oldest first (`[]`: none).",
    wrapped(schemas.HistoricalPreference, "ArrayOfHistoricalPreference"),
)
FILTER_ID = Query("filterId", description="Only this Filter's (case ignored).")
# The name of a preference's type: its contact element's type, or for the profile's own, the profile's.
TYPE_NAMES = {
    None: "CustomerType",
    "Emails": "EmailAddressType",
    "PhoneNumbers": "PhoneType",
    "Addresses": "AddressType",
}


def _found(client_id: str, target: Target) -> dict:
    """The profile ``target`` addresses (404 if none), named on the request's record."""
    return about(service().get(client_id, target))


def _filter_id() -> str | None:
    """The ``filterId`` asked for; an empty one asks for none."""
    return request.args.get("filterId") or None


# --- consent history ------------------------------------------------------------------------


@bp.get(f"{BY_ID}/ConsentHistory")
@vendor("Retrieve the consent history of a profile", {200: CONSENTS_ANSWER}, errors=BY_ID_ERRORS)
def consent_history(client_id: str, profile_id: int) -> dict:
    """The basic profile, active or not, and every consent it was given, each with ``Status``
    ``Complete``, ascending by ConsentType, ConsentVersion and modified date; 404 if unknown."""
    return _consent_history(client_id, profile_id)


@bp.get(f"{PROFILES}/ConsentHistory")
@vendor(
    "Retrieve the consent history of the holder of an AlternateId",
    {200: CONSENTS_ANSWER},
    errors=BY_ALTERNATE_ID_ERRORS,
    query=REQUIRED_ADDRESS,
)
def consent_history_by_alternate_id(client_id: str) -> dict:
    """As by ProfileId, for the active profile holding ``?alternateIdType=...&alternateId=...``
    (both required: 400); 404 if none holds it."""
    return _consent_history(client_id, required_alternate_id_query())


def _consent_history(client_id: str, target: Target) -> dict:
    profile = _found(client_id, target)
    # sorted is stable: consents of one type, version and moment stay in the order they were posted.
    consents = sorted(profile["Consents"], key=_consent_order)
    return profile | {"Consents": consents}


def _consent_order(consent: Mapping[str, Any]) -> tuple[str, str, str]:
    """Type, version (case ignored) and ModifiedDate: ISO 8601 in UTC, so text orders it in time."""
    return (
        consent["ConsentType"].casefold(),
        consent["ConsentVersion"].casefold(),
        consent["Edited"]["ModifiedDate"],
    )


# --- preference history ---------------------------------------------------------------------


@bp.get(f"{BY_ID}/PreferenceHistory")
@vendor(
    "Retrieve the preference history of a profile",
    {200: PREFERENCES_ANSWER},
    errors=BY_ID_ERRORS,
    query=(FILTER_ID,),
)
def preference_history(client_id: str, profile_id: int) -> list[dict]:
    """Every preference of a profile (active or not) as each write set, changed or archived it,
    oldest first, with its contact element; only ``filterId``'s when given. 404 if unknown."""
    return _preference_history(client_id, profile_id)


@bp.get(f"{PROFILES}/PreferenceHistory")
@vendor(
    "Retrieve the preference history of the holder of an AlternateId",
    {200: PREFERENCES_ANSWER},
    errors=BY_ALTERNATE_ID_ERRORS,
    query=(*REQUIRED_ADDRESS, FILTER_ID),
)
def preference_history_by_alternate_id(client_id: str) -> list[dict]:
    """As by ProfileId, for the active profile holding ``?alternateIdType=...&alternateId=...``
    (both required: 400); 404 if none holds it."""
    return _preference_history(client_id, required_alternate_id_query())


def _preference_history(client_id: str, target: Target) -> list[dict]:
    profile = _found(client_id, target)
    entries = parts.current().history.preferences(client_id, profile["ProfileId"], _filter_id())
    return entries


# --- consent filters ------------------------------------------------------------------------


@bp.get("/<client:client_id>/Consents/<int:profile_id>/Filters")
@vendor(
    "Retrieve the consent filters of a profile",
    {
        200: Answer(
            "The profile's Filters (`[]`: none).", wrapped(schemas.ConsentFilter, "ArrayOfConsentFilter")
        )
    },
    errors={
        **dict.fromkeys((401, 403, 404, 406)),
        400: "implied is not true or false.",
        500: "Documented by the vendor; the sandbox answers it only when a fault rule says so.",
    },
    query=(
        Query("filterId", description="Only this Filter (case ignored); without it, every Filter."),
        Query("implied", {"type": "boolean", "default": False}, "true: implied preferences' Filters too."),
    ),
)
def consent_filters(client_id: str, profile_id: int) -> list[dict]:
    """Each Filter of the preferences a profile holds (archived ones are gone), by FilterId and
    TypeName, with the consent versions associated with it (the sandbox associates none);
    ``implied=true`` adds the Filters of implied preferences (the sandbox records expressed ones
    only). 404 if unknown."""
    implied = flag("implied", False)
    profile = _found(client_id, profile_id)
    return _consent_filters(profile, _filter_id(), implied)


def _consent_filters(profile: Mapping[str, Any], filter_id: str | None, implied: bool) -> list[dict]:
    """The profile's Filters, once per FilterId, TypeName and kind, ordered so (case ignored)."""
    wanted = filter_id.casefold() if filter_id else None
    found: dict[tuple[str, str, bool], dict] = {}
    for collection, holder, stored in preferences_of(profile):
        is_implied = stored["MatchType"] != "Expressed"
        if (is_implied and not implied) or wanted not in (None, stored["FilterId"].casefold()):
            continue
        type_name = holder.get(TYPE_NAMES[collection])
        key = (stored["FilterId"].casefold(), (type_name or "").casefold(), is_implied)
        # A preference's Consents are its ConsentFilterVersion entries: what the vendor associates.
        entry = {"FilterId": stored["FilterId"], "TypeName": type_name, "Implied": is_implied}
        found.setdefault(key, entry | {"Consents": list(stored["Consents"])})
    return [found[key] for key in sorted(found)]
