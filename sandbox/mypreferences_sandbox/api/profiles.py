"""The vendor's Profile endpoints: profiles, searches, preferences and consents.

The blueprint is registered twice, at the root and under ``/Profiles``, so a client whose base URL
is the vendor's ``https://pmstg.mypreferences.com/Profiles/`` only swaps the host.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, request, url_for

from ..contract import schemas
from ..contract.errors import BadRequest, invalid
from ..contract.operations import PATCH_TYPES, Answer, Body, Query
from ..domain import profiles
from ..domain.service import AlternateId, Group, Search
from ..http import exchange
from ..http.record import current_record
from ..wire import formats
from .common import (
    ADDRESSED,
    BY_ALTERNATE_ID,
    BY_ID,
    NOT_HELD,
    PROFILES,
    READ_ERRORS,
    REQUIRED_ADDRESS,
    WARNINGS,
    WRITE_ERRORS,
    about,
    alternate_id_query,
    editor,
    flag,
    required_alternate_id_query,
    service,
    vendor,
    wrapped,
)

bp = Blueprint("api", __name__)

TOO_MANY = (
    "More matches than SANDBOX_MAX_SEARCH_RESULTS (50, as documented); strict mode: no `read` permission."
)
XML_PATCH = schemas.XmlPatchDocument()
PATCH = schemas.PatchDocument()
XML_PATCH_ROOT = "JsonPatchDocumentOfUserProfile5B0F46o8"
NO_XML_OPERATIONS = (
    "an XML JSON Patch document carries no operations (DataContractSerializer reads only its "
    "ContractResolver): nothing was patched"
)


def _read_patch(schema: None) -> list[dict]:
    """This request's JSON Patch operations: a bare array, or ``{"Operations": [...]}``. An XML
    body, in the documented form, is read as the vendor's stack reads it: as no operation."""
    if formats.is_xml(request.mimetype):
        exchange.read(XML_PATCH, XML_PATCH_ROOT)
        current_record().warnings.append(NO_XML_OPERATIONS)
        return []
    data = exchange.read(None, "").data
    document = {"Operations": data} if isinstance(data, list) else data
    return schemas.load(PATCH, document)["Operations"]


PROFILE_BODY = Body(schemas.CreateUserProfile)
PATCH_BODY = Body(
    {"oneOf": [{"type": "array", "items": schemas.PatchOperation}, schemas.PatchDocument]},
    PATCH_TYPES,
    reader=_read_patch,
)
FLAGS = (
    Query("implied", {"type": "boolean", "default": True}, "Accepted and checked; no effect."),
    Query(
        "includeConsentHistory",
        {"type": "boolean", "default": True},
        "false: only the latest consent of each ConsentType and Locale.",
    ),
)
SEARCHES = (
    Query("emailAddress", description="Search: active profiles with this email (case ignored)."),
    Query("phoneNumber", description="Search: active profiles with a phone of the same digits."),
    Query("phoneType", description="With phoneNumber: only a phone of this type (case ignored)."),
    Query(
        "includeInactive",
        {"type": "boolean", "default": False},
        "With phoneNumber: inactive profiles too (the vendor documents the flag, not its name).",
    ),
    Query("lastName", description="Search: names containing these (case ignored); required with the others."),
    Query("firstName"),
    Query("middleName"),
    Query("customFields[0].Name", description="Search by custom field; [1], [2], ... add more pairs."),
    Query("customFields[0].Value", description="Without it, any value of the named field matches."),
    Query("attributes[0].Key", description="Search by preference attribute; [1], [2], ... add more pairs."),
    Query("attributes[0].Value", description="Without it, any value of the key matches."),
)


def _profile(description: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(description, schemas.UserProfile, headers or {})


def _shows() -> Callable[[dict], dict]:
    """How a retrieve shows a profile: with or without its consent history (``includeConsentHistory``)."""
    flag("implied", True)  # checked: no filter hierarchy here to imply preferences from
    return (lambda profile: profile) if flag("includeConsentHistory", True) else profiles.latest_consents


# --- create, upsert, retrieve and search on {clientId}/Profile -------------------------------


@bp.post(PROFILES)
@vendor(
    "Create a profile (or upsert by AlternateId)",
    {
        201: _profile("Created.", {"Location": "The new profile's URL.", **WARNINGS}),
        200: _profile("Upsert: merged into the active holder of the AlternateId.", WARNINGS),
    },
    errors={**WRITE_ERRORS, 404: "Strict mode: an unknown clientId."},
    body=PROFILE_BODY,
    query=(ADDRESSED,),
    produces={
        "profileId": "$response.body#/ProfileId",
        "alternateIdType": "$response.body#/AlternateIds/0/AlternateIdType",
        "alternateId": "$response.body#/AlternateIds/0/AlternateId",
    },
)
def create_profile(client_id: str, body: dict) -> tuple[dict, int] | tuple[dict, int, dict]:
    """Create a profile: 201 with Location and the UserProfile; 400 if invalid, 409 if an
    AlternateId is held by another profile of the clientId. Nothing is stored on an error.

    With ``?alternateIdType=...&alternateId=...`` it is an upsert: the active profile holding that
    AlternateId is merged with the body (200), or a new one is created holding it (201)."""
    addressed = alternate_id_query()
    if addressed is None:
        stored, created = service().create(client_id, body, editor(client_id)), True
    else:
        stored, created = service().upsert(client_id, addressed, body, editor(client_id))
    if not created:
        return about(stored), 200
    location = url_for(".get_profile", client_id=client_id, profile_id=stored["ProfileId"], _external=True)
    return about(stored), 201, {"Location": location}


@bp.get(PROFILES)
@vendor(
    "Find profiles by AlternateId, email, phone, name or custom fields",
    {
        200: Answer(
            "By AlternateId: one UserProfile. A search: a list (`[]`: no match).",
            {"oneOf": [schemas.UserProfile, wrapped(schemas.UserProfile, "ArrayOfUserProfile")]},
        )
    },
    errors={
        **READ_ERRORS,
        400: "No search given, a bad flag, or half of an AlternateId pair.",
        403: TOO_MANY,
        404: "No active profile holds the AlternateId; strict mode: an unknown clientId.",
    },
    query=(ADDRESSED, *SEARCHES, *FLAGS),
)
def find_profiles(client_id: str) -> dict | list[dict]:
    """By AlternateId (``alternateIdType`` and ``alternateId``: one UserProfile, 404 if no active
    profile holds it), or a search returning active profiles: ``emailAddress``, ``phoneNumber``
    (its digits), ``lastName`` (with ``firstName``, ``middleName``; substrings, case ignored), or
    ``customFields[0].Name`` / ``customFields[0].Value`` (all pairs must match). More matches than
    the limit (50, as documented) is 403."""
    addressed = alternate_id_query()
    shown = _shows()
    if addressed is not None:
        return about(shown(service().get(client_id, addressed)))
    return _many(service().search(client_id, _search(), current_app.config["MAX_SEARCH_RESULTS"]))


def _pairs(name: str, key: str) -> tuple[tuple[str, str | None], ...]:
    """``name[0].<key>=...&name[0].Value=...``, ``name[1]...``: the (key, value) pairs, in order."""
    pairs, index = [], 0
    while f"{name}[{index}].{key}" in request.args:
        pairs.append((request.args[f"{name}[{index}].{key}"], request.args.get(f"{name}[{index}].Value")))
        index += 1
    return tuple(pairs)


def _search() -> Search:
    """The search the query asks for."""
    args = request.args
    if "emailAddress" in args:
        return Search(email=args["emailAddress"])
    if "phoneNumber" in args:
        digits = schemas.phone_digits(args["phoneNumber"])
        if not digits:
            raise invalid("phoneNumber", "The phoneNumber query parameter must contain digits.")
        return Search(
            phone=digits, phone_type=args.get("phoneType"), include_inactive=flag("includeInactive", False)
        )
    if "lastName" in args:
        if not args["lastName"]:
            raise invalid("lastName", "The lastName query parameter is required.")
        names = {"lastName": "LastName", "firstName": "FirstName", "middleName": "MiddleName"}
        return Search(names={field: args[name] for name, field in names.items() if name in args})
    if "customFields[0].Name" in args:
        return Search(custom_fields=_pairs("customFields", "Name"))
    if "attributes[0].Key" in args:
        return Search(attributes=_pairs("attributes", "Key"))
    raise invalid(
        "query",
        "Give alternateIdType and alternateId, emailAddress, phoneNumber, lastName, attributes[0].Key, "
        "or customFields[0].Name (with customFields[0].Value).",
    )


ADDRESS_QUERY = {
    "address1": "Address1", "address2": "Address2", "city": "City", "stateProvince": "StateProvince",
    "postalCode": "PostalCode", "addressType": "AddressType",
}  # fmt: skip
NAME_QUERY = {"firstName": "FirstName", "middleName": "MiddleName", "lastName": "LastName"}
LIST_OF_PROFILES = Answer(
    "The matching profiles (`[]`: none).", wrapped(schemas.UserProfile, "ArrayOfUserProfile")
)
SEARCH_ERRORS = {
    **READ_ERRORS,
    400: "A required parameter missing, or a bad flag.",
    403: TOO_MANY,
}


@bp.get(f"{PROFILES}/Address")
@vendor(
    "Find profiles by address",
    {200: LIST_OF_PROFILES},
    errors=SEARCH_ERRORS,
    query=(
        *(Query(name, required=name in ("city", "stateProvince")) for name in ADDRESS_QUERY),
        *(Query(name) for name in NAME_QUERY),
        Query("partialAddress1Match", {"type": "boolean", "default": False}, "address1 may be a part."),
        Query("partialNameMatch", {"type": "boolean", "default": False}, "Names may be parts."),
        *FLAGS,
    ),
)
def find_profiles_by_address(client_id: str) -> list[dict]:
    """Active profiles with an address matching every field given (``city`` and ``stateProvince``
    required), exactly but for case, and the names given; ``partialAddress1Match`` and
    ``partialNameMatch`` let ``address1`` and the names match a part. More than 50 is 403."""
    missing = [name for name in ("city", "stateProvince") if not request.args.get(name)]
    if missing:
        raise BadRequest(model_state={name: [f"The {name} query parameter is required."] for name in missing})
    criteria = Search(
        address={field: request.args[name] for name, field in ADDRESS_QUERY.items() if name in request.args},
        partial_address1=flag("partialAddress1Match", False),
        names={field: request.args[name] for name, field in NAME_QUERY.items() if name in request.args},
        partial_names=flag("partialNameMatch", False),
    )
    return _many(service().search(client_id, criteria, current_app.config["MAX_SEARCH_RESULTS"]))


GROUP_QUERY = (
    Query("groupType", description="The type of the primary profile's group entry.", required=True),
    Query("groupName", description="Only the group of this name."),
    *FLAGS,
)


@bp.get(f"{PROFILES}/Group")
@vendor(
    "Find the profiles of a group by its primary profile's email address or phone",
    {200: LIST_OF_PROFILES},
    errors=SEARCH_ERRORS,
    query=(
        Query("emailAddress", description="The primary profile's email address (or give phoneNumber)."),
        Query("emailType", description="With emailAddress: of this type."),
        Query("phoneNumber", description="The primary profile's phone (its digits)."),
        Query("phoneType", description="With phoneNumber: of this type."),
        *GROUP_QUERY,
    ),
)
def find_group_profiles(client_id: str) -> list[dict]:
    """The active profiles of the groups whose primary profile (a group entry of ``groupType``,
    and ``groupName`` if given, with IsPrimary) has this ``emailAddress`` (or ``phoneNumber``):
    every profile holding a group entry of the same type and name. More than 50 is 403."""
    args = request.args
    if "emailAddress" in args:
        primary = Search(email=args["emailAddress"], email_type=args.get("emailType"))
    elif "phoneNumber" in args and (digits := schemas.phone_digits(args["phoneNumber"])):
        primary = Search(phone=digits, phone_type=args.get("phoneType"))
    else:
        raise invalid("emailAddress", "The emailAddress (or phoneNumber) query parameter is required.")
    return _group(client_id, primary)


@bp.get(f"{PROFILES}/Group/<int:profile_id>")
@vendor(
    "Find the profiles of a group by its primary profile's ProfileId",
    {200: LIST_OF_PROFILES},
    errors=SEARCH_ERRORS,
    query=GROUP_QUERY,
)
def find_group_profiles_by_id(client_id: str, profile_id: int) -> list[dict]:
    """The active profiles of the groups whose primary profile is this one (as by email); 404 if
    no profile has the ProfileId."""
    return _group(client_id, profile_id)


def _group(client_id: str, primary: int | Search) -> list[dict]:
    group_type = request.args.get("groupType")
    if not group_type:
        raise invalid("groupType", "The groupType query parameter is required.")
    group = Group(primary, group_type, request.args.get("groupName"))
    return _many(service().group(client_id, group, current_app.config["MAX_SEARCH_RESULTS"]))


def _many(found: list[dict]) -> list[dict]:
    """Profiles found by a search, as a retrieve shows them."""
    shown = _shows()
    return [shown(profile) for profile in found]


@bp.put(PROFILES)
@vendor(
    "Overwrite the holder of an AlternateId",
    {200: _profile("The profile as stored now.", WARNINGS)},
    errors={**WRITE_ERRORS, **NOT_HELD},
    body=PROFILE_BODY,
    query=REQUIRED_ADDRESS,
)
def replace_by_alternate_id(client_id: str, body: dict) -> dict:
    """Overwrite the active profile holding ``?alternateIdType=...&alternateId=...`` (as PUT by id;
    the AlternateId it is addressed by is kept); 404 if none holds it."""
    addressed = required_alternate_id_query()
    return about(service().replace(client_id, addressed, body, editor(client_id)))


@bp.patch(PROFILES)
@vendor(
    "JSON Patch the holder of an AlternateId",
    {200: _profile("The profile as stored now.")},
    errors={**WRITE_ERRORS, **NOT_HELD},
    body=PATCH_BODY,
    query=REQUIRED_ADDRESS,
)
def patch_by_alternate_id_query(client_id: str, body: list[dict]) -> dict:
    """JSON Patch the active profile holding ``?alternateIdType=...&alternateId=...``."""
    addressed = required_alternate_id_query()
    return about(service().patch(client_id, addressed, body, editor(client_id)))


# --- by AlternateId in the path -------------------------------------------------------------


@bp.get(BY_ALTERNATE_ID)
@vendor(
    "Retrieve the holder of an AlternateId",
    {200: _profile("The active profile holding the AlternateId.")},
    errors={**READ_ERRORS, **NOT_HELD},
    query=FLAGS,
)
def get_by_alternate_id(client_id: str, alternate_id_type: str, alternate_id: str) -> dict:
    """The active profile holding an AlternateId (case ignored); 404 if none."""
    shown = _shows()
    return about(shown(service().get(client_id, AlternateId(alternate_id_type, alternate_id))))


@bp.patch(BY_ALTERNATE_ID)
@vendor(
    "JSON Patch the holder of an AlternateId",
    {200: _profile("The profile as stored now.")},
    errors={**WRITE_ERRORS, **NOT_HELD},
    body=PATCH_BODY,
)
def patch_by_alternate_id(
    client_id: str, alternate_id_type: str, alternate_id: str, body: list[dict]
) -> dict:
    """JSON Patch the active profile holding an AlternateId (as PATCH by id); 404 if none."""
    addressed = AlternateId(alternate_id_type, alternate_id)
    return about(service().patch(client_id, addressed, body, editor(client_id)))


# --- by ProfileId ---------------------------------------------------------------------------


@bp.get(BY_ID)
@vendor("Retrieve a profile", {200: _profile("The profile, active or not.")}, errors=READ_ERRORS, query=FLAGS)
def get_profile(client_id: str, profile_id: int) -> dict:
    """One profile as a UserProfile, active or not; 404 if unknown or another clientId's."""
    shown = _shows()
    return about(shown(service().get(client_id, profile_id)))


@bp.put(BY_ID)
@vendor(
    "Overwrite a profile",
    {200: _profile("The profile as stored now.", WARNINGS)},
    errors=WRITE_ERRORS,
    body=PROFILE_BODY,
)
def replace_profile(client_id: str, profile_id: int, body: dict) -> dict:
    """Overwrite a profile: what the body omits becomes empty or takes its default (IsActive
    stays as it is unless given). 400 and 409 as for a create; nothing changes on an error."""
    return about(service().replace(client_id, profile_id, body, editor(client_id)))


@bp.post(BY_ID)
@vendor(
    "Merge into a profile",
    {200: _profile("The profile as stored now.", WARNINGS)},
    errors=WRITE_ERRORS,
    body=PROFILE_BODY,
)
def merge_profile(client_id: str, profile_id: int, body: dict) -> dict:
    """Merge the body into a profile: only what is sent changes (see ``profiles.merge``)."""
    return about(service().merge(client_id, profile_id, body, editor(client_id)))


@bp.patch(BY_ID)
@vendor(
    "JSON Patch a profile",
    {200: _profile("The profile as stored now.")},
    errors=WRITE_ERRORS,
    body=PATCH_BODY,
)
def patch_profile(client_id: str, profile_id: int, body: list[dict]) -> dict:
    """Apply a JSON Patch (add, replace, remove, test; not move or copy) to the profile as a create
    document; the result is validated as a create. A failed test rejects the whole patch."""
    return about(service().patch(client_id, profile_id, body, editor(client_id)))


@bp.delete(BY_ID)
@vendor(
    "Delete a profile",
    {204: Answer("Deleted; its AlternateIds are free at once.")},
    errors=dict.fromkeys((401, 403, 404, 406)),
    query=(
        Query("reasonCode", description="Accepted; the vendor documents no maximum, nor does the sandbox."),
    ),
)
def delete_profile(client_id: str, profile_id: int) -> None:
    """Delete a profile for good (``?reasonCode=`` is accepted): 204; its AlternateIds are free at once."""
    service().delete(client_id, profile_id)
    current_record().profile_id = profile_id


@bp.post(f"{BY_ID}/Activate")
@vendor(
    "Activate a profile",
    {200: _profile("Active, its ReasonCode cleared.")},
    errors=dict.fromkeys((401, 403, 404, 406)),
)
def activate_profile(client_id: str, profile_id: int) -> dict:
    """Activate a profile and clear its ReasonCode; 200 with the UserProfile."""
    return about(service().activate(client_id, profile_id, editor(client_id)))


@bp.post(f"{BY_ID}/Deactivate")
@vendor(
    "Deactivate a profile",
    {200: _profile("Inactive; found by ProfileId only until reactivated.")},
    errors=dict.fromkeys((400, 401, 403, 404, 406, 413, 415)),
    body=Body(schemas.ReasonCode, required=False),
)
def deactivate_profile(client_id: str, profile_id: int, body: dict | None) -> dict:
    """Deactivate a profile, with an optional body ``{"Reason": "..."}`` (at most 256) stored as
    its ReasonCode; 200 with the UserProfile. It then drops out of AlternateId lookups and searches."""
    reason = (body or {}).get("Reason")
    return about(service().deactivate(client_id, profile_id, reason, editor(client_id)))


# --- preferences ----------------------------------------------------------------------------

# The documented request formats of the preference writes: JSON only (an XML body is a 415).
PREFERENCE_TYPES = ("application/json", "text/json", "application/json-patch+json")


@bp.post(f"{PROFILES}/Preferences/AlternateIdType/<alternate_id_type>/AlternateId/<alternate_id>")
@vendor(
    "Upsert preferences by AlternateId",
    {200: _profile("The profile with its preferences as stored now.", WARNINGS)},
    errors={
        **WRITE_ERRORS,
        404: "No active profile holds the AlternateId, or a type the body names is not configured.",
    },
    body=Body(schemas.UpsertPreferences, PREFERENCE_TYPES),
)
def upsert_preferences(client_id: str, alternate_id_type: str, alternate_id: str, body: dict) -> dict:
    """Upsert preferences on the active profile holding an AlternateId: each preference replaces
    the one of its Filter (on the profile, or on the contact element it comes with) or is added;
    a contact element the profile lacks is added. 404 for a type the account lacks."""
    target = AlternateId(alternate_id_type, alternate_id)
    return about(service().upsert_preferences(client_id, target, body, editor(client_id)))


@bp.put(f"{PROFILES}/Preferences/<int:profile_id>/Archive")
@vendor(
    "Archive preferences",
    {204: Answer("Archived: no longer answered, kept in the preference history.")},
    errors=dict.fromkeys((400, 401, 403, 404, 406, 413, 415)),
    body=Body(schemas.ArchivePreferences, PREFERENCE_TYPES),
)
def archive_preferences(client_id: str, profile_id: int, body: dict) -> None:
    """Deactivate and archive preferences: all of them with ``GlobalDeactivate``, else those each
    entry names (a contact element by type and/or value, in one Filter or all; the profile's own
    by Filter), each with its ``Reason_Code`` or the request's. 204."""
    service().archive_preferences(client_id, profile_id, body, editor(client_id))
    current_record().profile_id = profile_id


# --- consents -------------------------------------------------------------------------------


@bp.post("/<client:client_id>/Consents/<int:profile_id>")
@vendor(
    "Record consents on a profile",
    {200: _profile("The profile with the consents added.", WARNINGS)},
    errors=dict.fromkeys((400, 401, 403, 404, 406, 413, 415)),
    body=Body(schemas.CreateCustomerConsentList),
)
def add_consents(client_id: str, profile_id: int, body: dict) -> dict:
    """Record one or more consents on a profile (``{"Consents": [...]}``); 200 with the UserProfile."""
    return about(service().add_consents(client_id, profile_id, body["Consents"], editor(client_id)))


@bp.get("/<client:client_id>/ConsentStatus")
@vendor(
    "List the consent statuses",
    {200: Answer("The four statuses, by number and name.", schemas.ConsentStatusList)},
    errors=dict.fromkeys((401, 403, 404, 406)),
)
def consent_statuses(client_id: str) -> dict:
    """The four consent statuses, by number and name, in the documented wrapper:
    ``{"ConsentStatus": [{"Id": 1, "Name": "Granted"}, ...]}``."""
    statuses = [{"Id": number, "Name": name} for number, name in schemas.CONSENT_STATUSES.items()]
    return {"ConsentStatus": statuses}
