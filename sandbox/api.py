"""The vendor's Profile endpoints: thin views that parse, validate, call the domain and respond.

The blueprint is registered twice, at the root and under ``/Profiles``, so a client whose base URL
is the vendor's ``https://pmstg.mypreferences.com/Profiles/`` only swaps the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for

from . import auth, exchange, journal, profiles, schemas
from .clock import current_clock
from .errors import Forbidden, invalid
from .profiles import Account
from .store import current_store

bp = Blueprint("api", __name__)

CREATE = schemas.CreateUserProfile()
PROFILE = schemas.UserProfile()
REASON = schemas.ReasonCode()
CONSENTS = schemas.CreateCustomerConsentList()
PATCH = schemas.PatchDocument()
CONSENT_STATUS = schemas.ConsentStatusEntry()

PROFILES = "/<client:client_id>/Profile"
BY_ID = f"{PROFILES}/<int:profile_id>"
BY_ALTERNATE_ID = f"{PROFILES}/AlternateIdType/<alternate_id_type>/AlternateId/<alternate_id>"
ALTERNATE_ID_QUERY = ("alternateIdType", "alternateId")


@bp.before_request
def authenticate() -> None:
    """Who calls (401, 403, or 404 for an unknown clientId in strict mode), before the body is read."""
    g.user_id = auth.authenticate((request.view_args or {})["client_id"])


@bp.before_request
def negotiate() -> None:
    """Refuse an Accept the sandbox cannot satisfy (406) before anything is read or stored."""
    exchange.response_type()


# --- helpers --------------------------------------------------------------------------------


def _editor(client_id: str) -> dict[str, Any]:
    """Who writes and when, plus the clientId's account defaults: what new and revised profiles need."""
    return {
        "account": Account.from_config(current_app.config, client_id),
        "user": auth.current_user(),
        "now": current_clock().now(),
    }


def _touch(editor: Mapping[str, Any]) -> Any:
    return lambda profile: profiles.touch(profile, user=editor["user"], now=editor["now"])


def _read_profile() -> tuple[Any, dict]:
    """This request's body as a profile document: (the body read, its validated data)."""
    body = exchange.read(CREATE, "CreateUserProfile")
    return body, schemas.load(CREATE, body.data)


def _read_patch() -> list[dict]:
    """This request's JSON Patch operations: a bare array, or ``{"Operations": [...]}``."""
    data = exchange.read(None, "").data
    document = {"Operations": data} if isinstance(data, list) else data
    return schemas.load(PATCH, document)["Operations"]


def _flag(name: str, default: bool) -> bool:
    """A boolean query parameter; 400 for anything but true or false."""
    value = request.args.get(name)
    if value is None:
        return default
    if value.strip().lower() not in ("true", "false"):
        raise invalid(name, f"The value '{value}' is not valid for {name}; use true or false.")
    return value.strip().lower() == "true"


def _shown(profile: dict) -> dict:
    """A profile as a retrieve shows it: with or without its consent history (``includeConsentHistory``)."""
    _flag("implied", True)  # accepted and checked; the sandbox has no preferences to imply
    return profile if _flag("includeConsentHistory", True) else profiles.latest_consents(profile)


def _one(profile: dict, status: int = 200, **kwargs: Any) -> Response:
    journal.note(profileId=profile["ProfileId"])
    return exchange.respond(profile, PROFILE, "UserProfile", status, **kwargs)


def _alternate_id_query() -> tuple[str, str] | None:
    """The (type, id) of ``?alternateIdType=...&alternateId=...``; None when neither is given."""
    kind, ident = (request.args.get(name) for name in ALTERNATE_ID_QUERY)
    if kind is None and ident is None:
        return None
    if not kind or not ident:
        missing = ALTERNATE_ID_QUERY[0] if not kind else ALTERNATE_ID_QUERY[1]
        raise invalid(missing, f"The {missing} query parameter is required with the other.")
    return kind, ident


def _with_alternate_id(document: dict, kind: str, ident: str) -> dict:
    """``document`` holding the AlternateId it was addressed by (added when it lacks it)."""
    entries = list(document.get("AlternateIds") or [])
    wanted = (kind.casefold(), ident.casefold())
    if all(schemas.alternate_id_pair(entry) != wanted for entry in entries):
        entries.append({"AlternateIdType": kind, "AlternateId": ident})
    return {**document, "AlternateIds": entries}


def _merged(sent: dict, editor: Mapping[str, Any]) -> Any:
    """A change that merges ``sent`` into a profile (POST by id, upsert)."""

    def change(current: dict) -> dict:
        data = schemas.load(CREATE, profiles.merge(profiles.document(current), sent))
        return profiles.revise(current, data, **editor)

    return change


def _patched(operations: list[dict], editor: Mapping[str, Any]) -> Any:
    def change(current: dict) -> dict:
        patched = profiles.apply_patch(profiles.document(current), operations)
        return profiles.revise(current, schemas.load(CREATE, patched), **editor)

    return change


# --- create, upsert, retrieve and search on {clientId}/Profile -------------------------------


@bp.post(PROFILES)
def create_profile(client_id: str) -> Response:
    """Create a profile: 201 with Location and the UserProfile; 400 if invalid, 409 if an
    AlternateId is held by another profile of the clientId. Nothing is stored on an error.

    With ``?alternateIdType=...&alternateId=...`` it is an upsert: the active profile holding that
    AlternateId is merged with the body (200), or a new one is created holding it (201)."""
    body, sent = _read_profile()
    editor = _editor(client_id)
    addressed = _alternate_id_query()
    if addressed is None:
        stored, created = current_store().create(client_id, profiles.new_profile(sent, **editor)), True
    else:
        data = _with_alternate_id(sent, *addressed)
        stored, created = current_store().upsert(
            client_id,
            *addressed,
            change=_merged(sent, editor),
            new=lambda: profiles.new_profile(schemas.load(CREATE, data), **editor),
        )
    if not created:
        return _one(stored, warnings=body.ignored)
    location = url_for(".get_profile", client_id=client_id, profile_id=stored["ProfileId"], _external=True)
    return _one(stored, 201, headers={"Location": location}, warnings=body.ignored)


@bp.get(PROFILES)
def find_profiles(client_id: str) -> Response:
    """By AlternateId (``alternateIdType`` and ``alternateId``: one UserProfile, 404 if no active
    profile holds it), or a search returning active profiles: ``emailAddress``, ``phoneNumber``
    (its digits), ``lastName`` (with ``firstName``, ``middleName``; substrings, case ignored), or
    ``customFields[0].Name`` / ``customFields[0].Value`` (all pairs must match). More matches than
    the limit (50, as documented) is 403."""
    addressed = _alternate_id_query()
    if addressed is not None:
        return _one(_shown(current_store().holder(client_id, *addressed)))
    found = _search(client_id)
    limit = current_app.config["MAX_SEARCH_RESULTS"]
    if len(found) > limit:
        raise Forbidden(f"The search matches more than {limit} profiles; narrow it.")
    shown = [_shown(profile) for profile in found]
    return exchange.respond(shown, PROFILE, "ArrayOfUserProfile", item="UserProfile")


def _search(client_id: str) -> list[dict]:
    store, args = current_store(), request.args
    if "emailAddress" in args:
        return store.search(client_id, "email", args["emailAddress"].casefold())
    if "phoneNumber" in args:
        digits = schemas.phone_digits(args["phoneNumber"])
        if not digits:
            raise invalid("phoneNumber", "The phoneNumber query parameter must contain digits.")
        return store.search(client_id, "phone", digits)
    if "lastName" in args:
        return store.scan(client_id, _name_matcher())
    if "customFields[0].Name" in args:
        return store.scan(client_id, _custom_field_matcher())
    raise invalid(
        "query",
        "Give alternateIdType and alternateId, emailAddress, phoneNumber, lastName, "
        "or customFields[0].Name (with customFields[0].Value).",
    )


def _name_matcher() -> Any:
    wanted = {
        field: request.args[name].casefold()
        for name, field in (
            ("lastName", "LastName"),
            ("firstName", "FirstName"),
            ("middleName", "MiddleName"),
        )
        if name in request.args
    }
    if not wanted["LastName"]:
        raise invalid("lastName", "The lastName query parameter is required.")
    return lambda profile: all(
        text in (profile["CustomerName"].get(field) or "").casefold() for field, text in wanted.items()
    )


def _custom_field_matcher() -> Any:
    wanted, index = [], 0
    while f"customFields[{index}].Name" in request.args:
        name = request.args[f"customFields[{index}].Name"].casefold()
        value = request.args.get(f"customFields[{index}].Value")
        wanted.append((name, value.casefold() if value is not None else None))
        index += 1

    def matches(profile: dict) -> bool:
        held = {
            ((f["Name"] or "").casefold(), (f["Value"] or "").casefold()) for f in profile["CustomFields"]
        }
        names = {name for name, _ in held}
        return all((name, value) in held if value is not None else name in names for name, value in wanted)

    return matches


@bp.put(PROFILES)
def replace_by_alternate_id(client_id: str) -> Response:
    """Overwrite the active profile holding ``?alternateIdType=...&alternateId=...`` (as PUT by id;
    the AlternateId it is addressed by is kept); 404 if none holds it."""
    addressed = _required_alternate_id_query()
    body, sent = _read_profile()
    editor = _editor(client_id)
    data = schemas.load(CREATE, _with_alternate_id(sent, *addressed))
    stored = current_store().update_holder(
        client_id, *addressed, lambda current: profiles.revise(current, data, **editor)
    )
    return _one(stored, warnings=body.ignored)


@bp.patch(PROFILES)
def patch_by_alternate_id_query(client_id: str) -> Response:
    """JSON Patch the active profile holding ``?alternateIdType=...&alternateId=...``."""
    return patch_by_alternate_id(client_id, *_required_alternate_id_query())


def _required_alternate_id_query() -> tuple[str, str]:
    addressed = _alternate_id_query()
    if addressed is None:
        raise invalid("alternateIdType", "The alternateIdType and alternateId query parameters are required.")
    return addressed


# --- by AlternateId in the path -------------------------------------------------------------


@bp.get(BY_ALTERNATE_ID)
def get_by_alternate_id(client_id: str, alternate_id_type: str, alternate_id: str) -> Response:
    """The active profile holding an AlternateId (case ignored); 404 if none."""
    return _one(_shown(current_store().holder(client_id, alternate_id_type, alternate_id)))


@bp.patch(BY_ALTERNATE_ID)
def patch_by_alternate_id(client_id: str, alternate_id_type: str, alternate_id: str) -> Response:
    """JSON Patch the active profile holding an AlternateId (as PATCH by id); 404 if none."""
    operations = _read_patch()
    editor = _editor(client_id)
    stored = current_store().update_holder(
        client_id, alternate_id_type, alternate_id, _patched(operations, editor)
    )
    return _one(stored)


# --- by ProfileId ---------------------------------------------------------------------------


@bp.get(BY_ID)
def get_profile(client_id: str, profile_id: int) -> Response:
    """One profile as a UserProfile, active or not; 404 if unknown or another clientId's."""
    return _one(_shown(current_store().get(client_id, profile_id)))


@bp.put(BY_ID)
def replace_profile(client_id: str, profile_id: int) -> Response:
    """Overwrite a profile: what the body omits becomes empty or takes its default (IsActive
    stays as it is unless given). 400 and 409 as for a create; nothing changes on an error."""
    body, sent = _read_profile()
    editor = _editor(client_id)
    stored = current_store().update(
        client_id, profile_id, lambda current: profiles.revise(current, sent, **editor)
    )
    return _one(stored, warnings=body.ignored)


@bp.post(BY_ID)
def merge_profile(client_id: str, profile_id: int) -> Response:
    """Merge the body into a profile: only what is sent changes (see ``profiles.merge``)."""
    body, sent = _read_profile()
    stored = current_store().update(client_id, profile_id, _merged(sent, _editor(client_id)))
    return _one(stored, warnings=body.ignored)


@bp.patch(BY_ID)
def patch_profile(client_id: str, profile_id: int) -> Response:
    """Apply a JSON Patch (add, replace, remove, test; not move or copy) to the profile as a create
    document; the result is validated as a create. A failed test rejects the whole patch."""
    operations = _read_patch()
    stored = current_store().update(client_id, profile_id, _patched(operations, _editor(client_id)))
    return _one(stored)


@bp.delete(BY_ID)
def delete_profile(client_id: str, profile_id: int) -> Response:
    """Delete a profile for good (``?reasonCode=`` is accepted, at most 256): 204; its
    AlternateIds are free at once."""
    reason = request.args.get("reasonCode", "")
    if schemas.utf16_length(reason) > 256:
        raise invalid("reasonCode", "The field reasonCode must be a string with a maximum length of 256.")
    current_store().delete(client_id, profile_id)
    journal.note(profileId=profile_id)
    return Response(status=204)


@bp.post(f"{BY_ID}/Activate")
def activate_profile(client_id: str, profile_id: int) -> Response:
    """Activate a profile and clear its ReasonCode; 200 with the UserProfile."""
    touch = _touch(_editor(client_id))
    stored = current_store().update(client_id, profile_id, lambda p: touch(profiles.set_active(p, True)))
    return _one(stored)


@bp.post(f"{BY_ID}/Deactivate")
def deactivate_profile(client_id: str, profile_id: int) -> Response:
    """Deactivate a profile, with an optional body ``{"Reason": "..."}`` (at most 256) stored as
    its ReasonCode; 200 with the UserProfile. It then drops out of AlternateId lookups and searches."""
    reason = None
    if request.get_data(cache=True).strip():  # the body is optional, whatever its framing
        reason = schemas.load(REASON, exchange.read(REASON, "ReasonCode").data).get("Reason")
    touch = _touch(_editor(client_id))
    stored = current_store().update(
        client_id, profile_id, lambda p: touch(profiles.set_active(p, False, reason))
    )
    return _one(stored)


# --- consents -------------------------------------------------------------------------------


@bp.post("/<client:client_id>/Consents/<int:profile_id>")
def add_consents(client_id: str, profile_id: int) -> Response:
    """Record one or more consents on a profile (``{"Consents": [...]}``); 200 with the UserProfile."""
    body = exchange.read(CONSENTS, "CreateCustomerConsentList")
    consents = schemas.load(CONSENTS, body.data)["Consents"]
    editor = _editor(client_id)
    touch = _touch(editor)
    stored = current_store().update(
        client_id,
        profile_id,
        lambda p: touch(profiles.add_consents(p, consents, user=editor["user"], now=editor["now"])),
    )
    return _one(stored, warnings=body.ignored)


@bp.get("/<client:client_id>/ConsentStatus")
def consent_statuses(client_id: str) -> Response:
    """The four consent statuses, by number and name."""
    statuses = [{"Id": number, "Name": name} for number, name in schemas.CONSENT_STATUSES.items()]
    return exchange.respond(statuses, CONSENT_STATUS, "ConsentStatusList", item="ConsentStatus")
