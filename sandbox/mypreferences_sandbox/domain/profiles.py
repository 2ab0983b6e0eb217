"""A profile as the vendor keeps it: the fields the server generates from a validated create request.

Stored profiles use the JSON sample's names (groups keep ``GroupName``; the response schema renames).
Where the vendor's behaviour is undocumented the rule chosen here is written in the README.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonpatch
import pycountry

from ..contract import schemas
from ..contract.errors import invalid
from ..contract.moments import timestamp

ZIP_CODE = re.compile(r"(\d{5})(?:-?(\d{4}))?")
CASS_FIELDS = ("CassAddress1", "CassAddress2", "CassCity", "CassStateProvince", "CassPostalCode")


@dataclass(frozen=True)
class Account:
    """A clientId's account settings: the defaults applied to a profile that omits them."""

    customer_type: str
    locale: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any], client_id: str) -> Account:
        """The settings of ``client_id``: its entry in ``ACCOUNTS``, else the server-wide defaults."""
        own = config["ACCOUNTS"].get(client_id, {})
        return cls(
            customer_type=own.get("DefaultCustomerType", config["DEFAULT_CUSTOMER_TYPE"]),
            locale=own.get("DefaultLocale", config["DEFAULT_LOCALE"]),
        )


@dataclass(frozen=True)
class Editor:
    """Who writes and when, with the account's defaults: what new and revised profiles need; and
    where to tell what the sandbox tolerated in the write (the request's warnings)."""

    account: Account
    user: str
    now: datetime
    warnings: list[str] = field(default_factory=list, compare=False)


def _alternate_ids(entries: Iterable[Mapping[str, Any]], editor: Editor) -> list[dict]:
    """A request's AlternateIds, each pair once: a later entry of a pair an earlier one holds (case
    ignored) is dropped, with a warning. The vendor checks a pair against the profiles it stores,
    and its own request sample repeats one; a profile holding a pair twice could not be told apart."""
    kept: list[dict] = []
    seen: set[tuple[str, str] | None] = set()
    for index, entry in enumerate(entries):
        pair = schemas.alternate_id_pair(entry)
        if pair is not None and pair in seen:
            editor.warnings.append(f"ignored 'AlternateIds[{index}]': it repeats an earlier AlternateId")
            continue
        seen.add(pair)
        kept.append(_copy(entry, schemas.AlternateIdEntry))
    return kept


def edited(editor: Editor) -> dict:
    """A new ``Edited`` record: created and last modified by ``editor``, now."""
    stamp = timestamp(editor.now)
    return {"CreateDate": stamp, "CreatedBy": editor.user, "ModifiedDate": stamp, "ModifiedBy": editor.user}


def new_profile(data: Mapping[str, Any], editor: Editor) -> dict:
    """The stored form of a profile created from validated request ``data`` (no ProfileId yet)."""
    account = editor.account
    profile = {
        "Edited": edited(editor),
        "Addresses": [address(entry) for entry in data.get("Addresses") or ()],
        "PhoneNumbers": [phone_number(entry) for entry in data.get("PhoneNumbers") or ()],
        "Consents": [],
        "ReasonCode": None,
        "IsActive": _value(data, "IsActive", default=True),
        "RegistrationConfirmed": _value(data, "RegistrationConfirmed", default=False),
        "DefaultLocale": _value(data, "DefaultLocale", account.locale),
        "CustomerType": _value(data, "CustomerType", account.customer_type),
        "PreservePreferences": _value(data, "PreservePreferences", default=True),
        "CustomerName": _copy(data.get("CustomerName") or {}, schemas.CustomerName),
        "AlternateIds": _alternate_ids(data.get("AlternateIds") or (), editor),
        "Emails": [
            _copy(entry, schemas.EmailEntry) | {"IsDefault": _value(entry, "IsDefault"), "IsActive": True}
            for entry in data.get("Emails") or ()
        ],
        "Groups": [
            _copy(entry, schemas.GroupEntry) | {"IsPrimary": _value(entry, "IsPrimary")}
            for entry in data.get("Groups") or ()
        ],
        "ProfileTags": [_copy(entry, schemas.Tag) for entry in data.get("ProfileTags") or ()],
        "CustomFields": [_copy(e, schemas.CustomFieldValue) for e in data.get("CustomFields") or ()],
        "ProfilePreferences": data.get("ProfilePreferences") or [],
    }
    seen: dict[tuple, str] = {}
    for collection, member in PREFERENCES.items():
        for index, entry in enumerate(profile[collection] if collection else [profile]):
            holder = f"{collection}[{index}].{member}" if collection else member
            entry[member] = [preference(given, editor, CHANNELS[collection]) for given in entry[member] or ()]
            for position, stored in enumerate(entry[member]):
                # One preference per Filter and contact element: a second would be indistinguishable.
                key = (
                    collection,
                    ENTRY_KEYS[collection](entry) if collection else None,
                    stored["FilterId"].casefold(),
                )
                if key in seen:
                    message = (
                        f"The FilterId '{stored['FilterId']}' is already set for this element at {seen[key]}."
                    )
                    raise invalid(f"{holder}[{position}].FilterId", message)
                seen[key] = f"{holder}[{position}]"
    return profile


# Where preferences are kept: the profile's own, and each contact element's (collection: member).
PREFERENCES = {
    None: "ProfilePreferences",
    "Emails": "EmailPreferences",
    "PhoneNumbers": "PhonePreferences",
    "Addresses": "AddressPreferences",
}
CHANNELS = {None: None, "Emails": "Email", "PhoneNumbers": "Phone", "Addresses": "Mail"}


def preference(given: Mapping[str, Any], editor: Editor, channel: str | None) -> dict:
    """A stored preference from a validated one: what the vendor records with it, as of now."""
    return {
        "ProgramId": None,
        "ChannelId": channel,
        "Consents": [],
        "MatchType": "Expressed",
        "ReasonCode": None,
        "ExpirationDate": None,
        "PreferenceStatus": "Active",
        "LastModifiedDate": timestamp(editor.now),
        "UserId": editor.user,
        "SourceId": None,
        "FilterId": given["FilterId"],
        "PreferenceType": given["PreferenceType"],
        "FrequencyId": given.get("FrequencyId"),
        "PreferenceAttributes": [
            {"Key": pair["Key"], "Value": pair.get("Value")}
            for pair in given.get("PreferenceAttributes") or ()
        ],
    }


def preferences_of(profile: Mapping[str, Any]) -> list[tuple[str | None, Mapping[str, Any], dict]]:
    """Every preference of a stored profile: (its collection, its holder, the preference)."""
    found: list[tuple[str | None, Mapping[str, Any], dict]] = []
    for collection, member in PREFERENCES.items():
        for holder in profile[collection] if collection else [profile]:
            found.extend((collection, holder, stored) for stored in holder.get(member) or ())
    return found


def _keep_recorded(profile: dict, recorded: Mapping[str, Any]) -> None:
    """Keep when and by whom each preference of an exported profile was last modified: what an
    export writes, an import takes back (a value that is no timestamp or no text is not kept)."""
    for collection, member in PREFERENCES.items():
        holders = profile[collection] if collection else [profile]
        given = recorded.get(collection) if collection else [recorded]
        for holder, source in zip(holders, given if isinstance(given, list) else [], strict=False):
            sent = source.get(member) if isinstance(source, Mapping) else None
            for stored, original in zip(holder[member], sent if isinstance(sent, list) else [], strict=False):
                if not isinstance(original, Mapping):
                    continue
                moment, user = original.get("LastModifiedDate"), original.get("UserId")
                if isinstance(moment, str):
                    with contextlib.suppress(ValueError, OverflowError):
                        stored["LastModifiedDate"] = timestamp(schemas.moment(moment))
                if isinstance(user, str):
                    stored["UserId"] = user


def _same_preference(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    keys = ("FilterId", "PreferenceType", "FrequencyId", "PreferenceAttributes")
    return all(one[key] == other[key] for key in keys)


def _carry_over(revised: dict, current: Mapping[str, Any]) -> None:
    """Keep when and by whom each preference that a revision leaves as it was was last modified."""
    earlier = {
        (collection, _holder_key(collection, holder), stored["FilterId"].casefold()): stored
        for collection, holder, stored in preferences_of(current)
    }
    for collection, holder, stored in preferences_of(revised):
        kept = earlier.get((collection, _holder_key(collection, holder), stored["FilterId"].casefold()))
        if kept is not None and _same_preference(kept, stored):
            stored |= {"LastModifiedDate": kept["LastModifiedDate"], "UserId": kept["UserId"]}


def _holder_key(collection: str | None, holder: Mapping[str, Any]) -> Any:
    return ENTRY_KEYS[collection](holder) if collection else None


def address(entry: Mapping[str, Any]) -> dict:
    """A stored address: country codes completed from ISO 3166, and the Cass* fields."""
    stored = _copy(entry, schemas.CreateAddressEntry)
    stored |= {"IsDefault": _value(entry, "IsDefault"), "IsActive": True, "Country": None}
    country = find_country(entry)
    if country is not None:
        stored["Country"] = country.name
        for key, value in (
            ("CountryCode_Alpha2", country.alpha_2),
            ("CountryCode_Alpha3", country.alpha_3),
            ("CountryCode_Numeric", country.numeric),
        ):
            stored[key] = stored[key] or value
    return stored | cass(stored, country)


def find_country(entry: Mapping[str, Any]) -> Any | None:
    """The ISO 3166 country named by the first code given (Alpha2, Alpha3, then Numeric)."""
    for key, attribute in (
        ("CountryCode_Alpha2", "alpha_2"),
        ("CountryCode_Alpha3", "alpha_3"),
        ("CountryCode_Numeric", "numeric"),
    ):
        code = (entry.get(key) or "").strip()
        if code:
            code = code.zfill(3) if attribute == "numeric" else code
            # default=None is get's own default; naming it tells mypy the criterion is not "default".
            return pycountry.countries.get(default=None, **{attribute: code})
    return None


def cass(stored: Mapping[str, Any], country: Any | None) -> dict:
    """The sandbox's stand-in for CASS: a US address with a ZIP or ZIP+4 is standardized ("Y")
    by collapsing white space and upper-casing; any other address is not ("N", Cass* null)."""
    match = ZIP_CODE.fullmatch((stored["PostalCode"] or "").strip())
    if country is None or country.alpha_2 != "US" or match is None:
        return dict.fromkeys(CASS_FIELDS) | {"CassStatus": "N"}
    return {
        "CassAddress1": _standard(stored["Address1"]),
        "CassAddress2": _standard(stored["Address2"]),
        "CassCity": _standard(stored["City"]),
        "CassStateProvince": _standard(stored["StateProvince"]),
        "CassPostalCode": "-".join(part for part in match.groups() if part),
        "CassStatus": "Y",
    }


def phone_number(entry: Mapping[str, Any]) -> dict:
    """A stored phone number; PhoneNumberNumeric is its digits as an integer, null when there are
    none or more than a .NET Int64 holds (the vendor's field is an integer)."""
    digits = schemas.phone_digits(entry.get("PhoneNumber"))
    numeric = int(digits) if 0 < len(digits) <= 19 else None
    return _copy(entry, schemas.CreatePhoneNumberEntry) | {
        "PhoneNumberNumeric": numeric if numeric is not None and numeric <= schemas.INT64_MAX else None,
        "IsDefault": _value(entry, "IsDefault"),
        "IsActive": True,
        "IsMobile": _value(entry, "IsMobile"),
    }


def _copy(entry: Mapping[str, Any], shape: type[schemas.Contract]) -> dict:
    """Every field of ``shape``, taken from ``entry`` (null where absent)."""
    return {key: entry.get(key) for key in shape._declared_fields}


def _value(data: Mapping[str, Any], key: str, default: Any = False) -> Any:
    """``data[key]``, or ``default`` where it is absent or null."""
    value = data.get(key)
    return default if value is None else value


def _standard(text: str | None) -> str | None:
    return " ".join(text.split()).upper() if text else None


def imported(data: Mapping[str, Any], editor: Editor, recorded: Mapping[str, Any]) -> dict:
    """The stored form of a validated ``schemas.ImportedProfile``: generated fields are derived as
    for a create, then those the document carries are kept (no ProfileId: None, one is assigned),
    the preferences' ``LastModifiedDate`` and ``UserId`` from the document as ``recorded``."""
    profile = new_profile(data, editor)
    _keep_recorded(profile, recorded)
    profile["ProfileId"] = data.get("ProfileId")
    given = {key: value for key, value in (data.get("Edited") or {}).items() if value is not None}
    profile["Edited"] |= given
    profile["Consents"] = [consent(entry, editor) for entry in data.get("Consents") or ()]
    profile["ReasonCode"] = None if profile["IsActive"] else data.get("ReasonCode")
    return profile


def document(profile: Mapping[str, Any]) -> dict:
    """A stored profile as a create request would carry it: what PUT, merge and PATCH work on."""
    return _project(profile, schemas.CreateUserProfile)


def _project(data: Mapping[str, Any], shape: type[schemas.Schema]) -> dict:
    """The members of ``data`` that ``shape`` declares, nested ones projected alike. A value of the
    wrong kind (a patch may put a string where an object belongs) is kept for validation to refuse."""
    projected = {}
    for key, known in shape._declared_fields.items():
        value = data.get(key)
        inner = _inner(known)
        if isinstance(known, schemas.fields.List) and inner is not None and isinstance(value, list):
            value = [_project(entry, type(inner)) if isinstance(entry, Mapping) else entry for entry in value]
        elif inner is not None and isinstance(value, Mapping):
            value = _project(value, type(inner))
        projected[key] = value
    return projected


def revise(current: Mapping[str, Any], data: Mapping[str, Any], editor: Editor) -> dict:
    """``current`` rebuilt from a whole, validated request document ``data``.

    What the document omits takes its default, as a create would, except what a document cannot
    carry: ProfileId, Consents, the Edited creation fields, and IsActive when ``data`` omits it.
    """
    revised = new_profile(data, editor)
    _carry_over(revised, current)
    revised["ProfileId"] = current["ProfileId"]
    revised["Consents"] = current["Consents"]
    revised["Edited"] |= {key: current["Edited"][key] for key in ("CreateDate", "CreatedBy")}
    revised["IsActive"] = _value(data, "IsActive", current["IsActive"])
    revised["ReasonCode"] = None if revised["IsActive"] else current["ReasonCode"]
    return revised


# How a merge recognises that an entry of the request is one the profile already has.
ENTRY_KEYS: dict[str, Any] = {
    "Addresses": lambda e: tuple(_fold(e.get(key)) for key in ("Address1", "City", "PostalCode")),
    "PhoneNumbers": lambda e: schemas.phone_digits(e.get("PhoneNumber")) or e.get("PhoneNumber"),
    "Emails": lambda e: _fold(e.get("EmailAddress")),
    "AlternateIds": lambda e: schemas.alternate_id_pair(e) or id(e),
    "Groups": lambda e: (_fold(e.get("GroupType")), _fold(e.get("GroupName"))),
    "ProfileTags": lambda e: _fold(e.get("Name")),
    "CustomFields": lambda e: _fold(e.get("Name")),
}


def merge(current: Mapping[str, Any], data: Mapping[str, Any]) -> dict:
    """A request document ``current`` with the fields of ``data`` merged in (POST by id).

    Properties ``data`` omits are kept. ``CustomerName`` is merged field by field. A collection
    entry of ``data`` updates the entry it matches (see ``ENTRY_KEYS``), field by field, or is
    appended; entries ``data`` does not mention are kept.
    """
    merged = dict(current)
    for key, value in data.items():
        if key in ENTRY_KEYS and value is not None:
            merged[key] = _merge_entries(current.get(key) or [], value, ENTRY_KEYS[key])
        elif key == "CustomerName" and value is not None:
            merged[key] = {**(current.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def _merge_entries(current: list[dict], sent: list[dict], key: Any) -> list[dict]:
    merged = [dict(entry) for entry in current]
    positions = {key(entry): index for index, entry in enumerate(merged)}
    for entry in sent:
        position = positions.get(key(entry))
        if position is None:
            positions[key(entry)] = len(merged)
            merged.append(dict(entry))
        else:
            merged[position] |= entry
    return merged


def touch(profile: dict, editor: Editor) -> dict:
    """``profile`` marked as modified by ``editor``, now."""
    profile["Edited"] |= {"ModifiedDate": timestamp(editor.now), "ModifiedBy": editor.user}
    return profile


def set_active(profile: dict, active: bool, reason: str | None = None) -> dict:
    """``profile`` activated (its ReasonCode cleared) or deactivated with an optional reason."""
    profile["IsActive"] = active
    profile["ReasonCode"] = None if active else reason
    return profile


def add_consents(profile: dict, consents: Sequence[Mapping[str, Any]], editor: Editor) -> dict:
    """``profile`` with ``consents`` (validated requests) recorded, each with its own Edited."""
    profile["Consents"].extend(consent(given, editor) for given in consents)
    return profile


def consent(given: Mapping[str, Any], editor: Editor) -> dict:
    """A stored consent from a validated one: its date in UTC (default: now), its own Edited,
    not expired (a state document may carry Expired, ExpirationDate and Edited)."""
    moment = given.get("ConsentDate")
    expiration = given.get("ExpirationDate")
    return {
        "ConsentType": given["ConsentType"],
        "Locale": given["Locale"],
        "ConsentStatus": given["ConsentStatus"],
        "ConsentVersion": given["ConsentVersion"],
        "Expired": given.get("Expired") or False,
        "ExpirationDate": timestamp(schemas.moment(expiration)) if expiration else None,
        "ConsentDate": timestamp(schemas.moment(moment) if moment else editor.now),
        # What a state document's Edited gives is kept, and what it leaves out is generated.
        "Edited": edited(editor)
        | {key: value for key, value in (given.get("Edited") or {}).items() if value is not None},
    }


def latest_consents(profile: dict) -> dict:
    """``profile`` with only the latest consent of each ConsentType and Locale (no history)."""
    latest: dict[tuple[str, str], dict] = {}
    for consent in profile["Consents"]:
        latest[(consent["ConsentType"].casefold(), consent["Locale"].casefold())] = consent
    return profile | {"Consents": list(latest.values())}


def _fold(text: str | None) -> str | None:
    return text.casefold() if isinstance(text, str) else text


SHOWN = schemas.UserProfile()
WRITABLE = schemas.CreateUserProfile()


def patched(profile: Mapping[str, Any], operations: list[dict]) -> dict:
    """The create document of ``profile`` once JSON Patch ``operations`` are applied to it as the
    vendor applies them: to the UserProfile as it is answered (so ``/Groups/0/GroupId`` names a
    group). A path into a read-only member (``/ProfileId``, ``/Addresses/0/Country``) or to no
    member at all is a 400 naming the operation, and none of the patch applies."""
    for index, operation in enumerate(operations):
        if operation["op"] != "test":  # reading a read-only member is fine
            _check_writable(operation["path"], index)
    shown = _apply_patch(_answered(profile), operations)
    for group in shown.get("Groups") or ():
        if isinstance(group, dict) and "GroupId" in group:  # the answer's name for GroupName
            group["GroupName"] = group.pop("GroupId")
    return _project(shown, schemas.CreateUserProfile) if isinstance(shown, dict) else shown


def _answered(profile: Mapping[str, Any]) -> dict:
    """``profile`` as answered, with the preference collections an answer leaves out when empty:
    the members exist on the vendor's model, so a patch may add to them."""
    shown = SHOWN.dump(profile)
    for collection, member in PREFERENCES.items():
        for holder in shown.get(collection) or () if collection else [shown]:
            holder.setdefault(member, [])
    return shown


def _check_writable(path: str, index: int) -> None:
    """400 unless ``path`` names a member a create document can carry, walking the answered shape
    and the create shape side by side."""
    shown: Any = SHOWN
    writable: Any = WRITABLE
    for token in path.split("/")[1:]:
        if shown is None or token == "-" or token.isdigit():
            continue  # inside a collection, or a value the shapes do not describe: the patch decides
        name = token.replace("~1", "/").replace("~0", "~")
        member = shown.fields.get(name)
        if member is None:
            message = f"The target location specified by path segment '{name}' was not found."
            raise invalid(f"Operations[{index}]", message)
        target = writable.fields.get(member.attribute or name)
        if target is None:
            raise invalid(f"Operations[{index}]", f"The member at '{path}' is read-only.")
        shown, writable = _inner(member), _inner(target)


def _inner(member: Any) -> Any:
    """The shape inside a nested member or a collection of them, else None."""
    if isinstance(member, schemas.fields.List):
        member = member.inner
    return member.schema if isinstance(member, schemas.fields.Nested) else None


def _apply_patch(current: Mapping[str, Any], operations: list[dict]) -> Any:
    """``current`` with JSON Patch ``operations`` applied in order; any failure is a 400 naming
    the operation."""
    patched: Any = copy.deepcopy(dict(current))
    for index, operation in enumerate(operations):
        try:
            patched = jsonpatch.JsonPatch([operation]).apply(patched)
        except jsonpatch.JsonPatchTestFailed:
            raise invalid(f"Operations[{index}]", f"The test at '{operation['path']}' failed.") from None
        # ASP.NET Core's wording; never the library's, which quotes the whole document. A path
        # into a string ('/CustomerType/0') fails as a TypeError or a pointer error, by version.
        except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException, LookupError, TypeError):
            segment = operation["path"].rstrip("/").rpartition("/")[2]
            message = f"The target location specified by path segment '{segment}' was not found."
            raise invalid(f"Operations[{index}]", message) from None
        except jsonpatch.JsonPatchException:
            message = f"The {operation['op']} at '{operation['path']}' could not be applied."
            raise invalid(f"Operations[{index}]", message) from None
    return patched


def with_preferences(document: Mapping[str, Any], sent: Mapping[str, Any]) -> dict:
    """A create document with the preferences of ``sent`` upserted (an upsert of preferences by
    AlternateId): each preference replaces the one of its Filter, or is added; a contact element
    the document lacks is added with them."""
    upserted = dict(document)
    upserted["ProfilePreferences"] = _upserted(
        document.get("ProfilePreferences"), sent.get("ProfilePreferences")
    )
    for collection, member in PREFERENCES.items():
        if collection is None or not sent.get(collection):
            continue
        entries = [dict(entry) for entry in document.get(collection) or ()]
        positions = {ENTRY_KEYS[collection](entry): index for index, entry in enumerate(entries)}
        for given in sent[collection]:
            position = positions.get(ENTRY_KEYS[collection](given))
            if position is None:
                positions[ENTRY_KEYS[collection](given)] = len(entries)
                entries.append(dict(given))
            else:
                entries[position][member] = _upserted(entries[position].get(member), given.get(member))
        upserted[collection] = entries
    return upserted


def _upserted(current: Sequence[Mapping[str, Any]] | None, sent: Sequence[Mapping[str, Any]] | None) -> list:
    kept = [dict(given) for given in current or ()]
    positions = {given["FilterId"].casefold(): index for index, given in enumerate(kept)}
    for given in sent or ():
        position = positions.get(given["FilterId"].casefold())
        if position is None:
            positions[given["FilterId"].casefold()] = len(kept)
            kept.append(dict(given))
        else:
            kept[position] = dict(given)
    return kept


# What an archive request's entry may name of a contact element, and how each member compares.
ARCHIVE_CRITERIA: dict[str, dict[str, Any]] = {
    "Emails": {"EmailAddressType": _fold, "EmailAddress": _fold},
    "PhoneNumbers": {"PhoneType": _fold, "PhoneNumber": schemas.phone_digits},
    "Addresses": {"AddressType": _fold, "Address1": _fold, "City": _fold, "PostalCode": _fold},
}


def archive(profile: dict, request: Mapping[str, Any]) -> dict[tuple, str | None]:
    """Take from ``profile`` the preferences a validated archive request names (every one with
    ``GlobalDeactivate``); the reason of each, by where it was (as ``history`` keys them). 400 for
    a contact-element entry that names neither a type nor an element."""
    default = request.get("Reason_Code")
    reasons: dict[tuple, str | None] = {}

    def take(collection: str | None, holder: dict, filter_id: str | None, reason: str | None) -> None:
        member = PREFERENCES[collection]
        kept = []
        for stored in holder.get(member) or ():
            if filter_id is None or stored["FilterId"].casefold() == filter_id.casefold():
                where = ENTRY_KEYS[collection](holder) if collection else None
                reasons[(collection, where, stored["FilterId"].casefold())] = reason
            else:
                kept.append(stored)
        holder[member] = kept

    if request.get("GlobalDeactivate"):
        for collection in PREFERENCES:
            for holder in profile[collection] if collection else [profile]:
                take(collection, holder, None, default)
        return reasons
    for item in request.get("ProfilePreferences") or ():
        take(None, profile, item["FilterId"], item.get("Reason_Code") or default)
    for collection, criteria in ARCHIVE_CRITERIA.items():
        for index, item in enumerate(request.get(collection) or ()):
            given = {name: compare(item[name]) for name, compare in criteria.items() if item.get(name)}
            if not given:
                message = f"Name a type or a contact element: one of {', '.join(criteria)}."
                raise invalid(f"{collection}[{index}]", message)
            for holder in profile[collection]:
                if all(criteria[name](holder.get(name) or "") == value for name, value in given.items()):
                    take(collection, holder, item.get("FilterId"), item.get("Reason_Code") or default)
    return reasons


def holds_pairs(wanted: Sequence[tuple[str, str | None]], key: str) -> Callable[[Iterable[Mapping]], bool]:
    """Whether entries of ``key`` and ``Value`` (custom fields, preference attributes) hold every
    wanted pair (a value None: any value of the key), case ignored."""
    folded = [(name.casefold(), value.casefold() if value is not None else None) for name, value in wanted]

    def holds(entries: Iterable[Mapping]) -> bool:
        held = {((e[key] or "").casefold(), (e["Value"] or "").casefold()) for e in entries}
        names = {name for name, _ in held}
        return all((name, value) in held if value is not None else name in names for name, value in folded)

    return holds


def only_preferences(profile: dict, keep: Any) -> dict:
    """``profile`` with only the preferences ``keep`` accepts (the others left out of the answer)."""
    shown = copy.deepcopy(profile)
    for collection, member in PREFERENCES.items():
        for holder in shown[collection] if collection else [shown]:
            holder[member] = [stored for stored in holder.get(member) or () if keep(stored)]
    return shown
