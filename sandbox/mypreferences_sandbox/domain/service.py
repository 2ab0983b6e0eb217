"""The profile service: every operation on profiles, between the views and the store.

Views parse a request and hand the service validated data and an ``Editor`` (who writes, when, for
which account); the service builds and revises stored profiles (``profiles``) and has the store
keep them, each write one atomic change. It knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contract import schemas
from ..contract.errors import BadRequest, Forbidden
from ..contract.moments import timestamp
from ..turns import pace
from . import profiles
from .accounts import AccountsBase
from .history import HistoryBase, Key, Snapshot, snapshot
from .profiles import Editor
from .store import Change, ProfileStore

CREATE = schemas.CreateUserProfile()
IMPORTED = schemas.ImportedProfile()


@dataclass(frozen=True)
class AlternateId:
    """An (AlternateIdType, AlternateId) pair that addresses the active profile holding it."""

    kind: str
    ident: str


# A profile addressed by its ProfileId, or by an AlternateId its active holder has.
Target = int | AlternateId


@dataclass(frozen=True)
class Search:
    """What a search asks for, one kind per search: an email address (of an ``email_type``); phone
    digits (of a ``phone_type``, among inactive profiles too when asked); an address (address
    fields to their values, exact but for a ``partial_address1``) with names exact but when
    ``partial_names``; name parts (CustomerName field to the text it must contain); or custom
    fields or preference attributes (name or key, and the value, None for any). Text compares
    ignoring case."""

    email: str | None = None
    email_type: str | None = None
    phone: str | None = None
    phone_type: str | None = None
    include_inactive: bool = False
    address: Mapping[str, str] = field(default_factory=dict)
    partial_address1: bool = False
    names: Mapping[str, str] = field(default_factory=dict)
    partial_names: bool = True
    custom_fields: tuple[tuple[str, str | None], ...] = ()
    attributes: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Group:
    """A group search: the primary profile (by ProfileId, or a search by email or phone) and the
    ``group_type`` (and ``group_name``, if given) of its primary group entry."""

    primary: int | Search
    group_type: str
    group_name: str | None = None


class ProfileService:
    """Profiles of every clientId, created, read, changed and searched as the vendor does."""

    def __init__(self, store: ProfileStore, accounts: AccountsBase, history: HistoryBase) -> None:
        self.store = store
        self.accounts = accounts
        self.history = history

    def get(self, client_id: str, target: Target) -> dict:
        """A profile by ProfileId (active or not), or the active holder of an AlternateId; 404 if none."""
        if isinstance(target, AlternateId):
            return self.store.holder(client_id, target.kind, target.ident)
        return self.store.get(client_id, target)

    def create(self, client_id: str, data: Mapping[str, Any], editor: Editor) -> dict:
        """A new profile from a validated create document; 409 if an AlternateId is taken, 404 if
        it names a type its account lacks."""
        unknown = self.accounts.check(client_id, data)
        stored = self.store.create(client_id, profiles.new_profile(data, editor))
        self.history.record(client_id, {}, stored, timestamp(editor.now))
        return self._registered(client_id, unknown, editor, stored)

    def upsert(
        self, client_id: str, target: AlternateId, data: Mapping[str, Any], editor: Editor
    ) -> tuple[dict, bool]:
        """Merge ``data`` into the active holder of ``target``, or create a profile holding it;
        True if created."""
        holding = schemas.load(CREATE, _holding(data, target))
        unknown = self.accounts.check(client_id, holding)
        earlier: Snapshot = {}
        stored, created = self.store.upsert(
            client_id,
            target.kind,
            target.ident,
            change=_recording(_merged(data, editor), earlier),
            new=lambda: profiles.new_profile(holding, editor),
        )
        self.history.record(client_id, earlier, stored, timestamp(editor.now))
        return self._registered(client_id, unknown, editor, stored), created

    def replace(self, client_id: str, target: Target, data: Mapping[str, Any], editor: Editor) -> dict:
        """Overwrite a profile with a whole document: what it omits is blanked, as documented, the
        AlternateIds too, even the one a PUT by AlternateId found the profile by."""
        unknown = self.accounts.check(client_id, data)
        stored = self._change(
            client_id, target, lambda current: profiles.revise(current, data, editor), editor
        )
        return self._registered(client_id, unknown, editor, stored)

    def merge(self, client_id: str, target: Target, data: Mapping[str, Any], editor: Editor) -> dict:
        """Merge a document into a profile: only what it sends changes (``profiles.merge``)."""
        unknown = self.accounts.check(client_id, data)
        return self._registered(
            client_id, unknown, editor, self._change(client_id, target, _merged(data, editor), editor)
        )

    def patch(self, client_id: str, target: Target, operations: Sequence[dict], editor: Editor) -> dict:
        """Apply JSON Patch operations to a profile as answered (a UserProfile); the result is
        validated as a create."""

        unknown: list[tuple[str, str]] = []

        def change(current: dict) -> dict:
            document = schemas.load(CREATE, profiles.patched(current, list(operations)))
            unknown[:] = self.accounts.check(client_id, document, held=current)  # the last attempt's
            return profiles.revise(current, document, editor)

        return self._registered(client_id, unknown, editor, self._change(client_id, target, change, editor))

    def activate(self, client_id: str, target: Target, editor: Editor) -> dict:
        """Activate a profile and clear its ReasonCode."""
        return self._change(
            client_id, target, lambda p: profiles.touch(profiles.set_active(p, True), editor), editor
        )

    def deactivate(self, client_id: str, target: Target, reason: str | None, editor: Editor) -> dict:
        """Deactivate a profile, keeping ``reason`` as its ReasonCode. A profile that does not
        preserve its preferences (``PreservePreferences`` false) loses them, archived with the
        reason, as the vendor's Deactivate page says: an Activate does not bring them back."""
        reasons: dict[Key, str | None] = {}

        def change(current: dict) -> dict:
            reasons.clear()  # a shared store runs a change again if another process wrote meanwhile
            if current["PreservePreferences"] is False:
                reasons.update(profiles.archive(current, {"GlobalDeactivate": True, "Reason_Code": reason}))
            return profiles.touch(profiles.set_active(current, False, reason), editor)

        return self._change(client_id, target, change, editor, reasons)

    def add_consents(
        self, client_id: str, target: Target, consents: Sequence[Mapping[str, Any]], editor: Editor
    ) -> dict:
        """Record validated consents on a profile, each with its own Edited; 404 for a ConsentType
        its account lacks."""
        unknown = self.accounts.check(client_id, {"Consents": consents})
        stored = self._change(
            client_id,
            target,
            lambda p: profiles.touch(profiles.add_consents(p, consents, editor), editor),
            editor,
        )
        return self._registered(client_id, unknown, editor, stored)

    def upsert_preferences(
        self, client_id: str, target: Target, data: Mapping[str, Any], editor: Editor
    ) -> dict:
        """Upsert the preferences of a validated ``UpsertPreferences`` body: each replaces the one
        of its Filter or is added; a contact element the profile lacks is added. 404 for a type
        its account lacks."""
        unknown: list[tuple[str, str]] = []

        def change(current: dict) -> dict:
            # Only what the upsert adds is checked: an existing contact element keeps its type.
            document = schemas.load(CREATE, profiles.with_preferences(profiles.document(current), data))
            unknown[:] = self.accounts.check(client_id, document, held=current)  # the last attempt's
            return profiles.revise(current, document, editor)

        return self._registered(client_id, unknown, editor, self._change(client_id, target, change, editor))

    def archive_preferences(
        self, client_id: str, target: Target, request: Mapping[str, Any], editor: Editor
    ) -> None:
        """Deactivate and archive the preferences a validated ``ArchivePreferences`` body names:
        they leave the profile, and its history keeps them, archived, with their reasons."""
        reasons: dict[Key, str | None] = {}

        def change(current: dict) -> dict:
            reasons.clear()  # a shared store runs a change again if another process wrote meanwhile
            reasons.update(profiles.archive(current, request))
            return profiles.touch(current, editor)

        self._change(client_id, target, change, editor, reasons)

    def delete(self, client_id: str, profile_id: int) -> None:
        """Delete a profile for good, its history with it; its AlternateIds are free at once."""
        self.store.delete(client_id, profile_id)
        self.history.forget(client_id, profile_id)

    def search(self, client_id: str, criteria: Search, limit: int) -> list[dict]:
        """The active profiles matching ``criteria``, by ProfileId; 403 past ``limit`` of them."""
        if criteria.email is not None:
            email, email_type = criteria.email, criteria.email_type
            of_type = (lambda p: _has_email(p, email, email_type)) if email_type is not None else None
            found = self.store.search(client_id, "email", email.casefold(), matches=of_type, limit=limit)
        elif criteria.phone is not None:
            phone, phone_type = criteria.phone, criteria.phone_type
            of_type = (lambda p: _has_phone(p, phone, phone_type)) if phone_type is not None else None
            found = self.store.search(
                client_id, "phone", phone, inactive=criteria.include_inactive, matches=of_type, limit=limit
            )
        elif criteria.address:
            found = self.store.scan(client_id, _address_match(criteria), limit=limit)
        elif criteria.names:
            found = self.store.scan(
                client_id, _names_match(criteria.names, criteria.partial_names), limit=limit
            )
        elif criteria.custom_fields:
            found = self.store.scan(client_id, _custom_fields_match(criteria.custom_fields), limit=limit)
        else:
            holds = profiles.holds_pairs(criteria.attributes, "Key")

            def matches(stored: Mapping[str, Any]) -> bool:
                return holds(stored["PreferenceAttributes"])

            found = self.store.scan(
                client_id, lambda p: any(matches(s) for _, _, s in profiles.preferences_of(p)), limit=limit
            )
            # As documented, only the preferences that hold every attribute asked for are answered.
            found = [profiles.only_preferences(p, matches) for p in found]
        return _within(found, limit)

    def group(self, client_id: str, group: Group, limit: int) -> list[dict]:
        """The active profiles of the groups led by the primary profile ``group`` names: those
        holding a group entry of the type and name of one of its primary entries; 403 past ``limit``."""
        if isinstance(group.primary, int):
            leads = [self.store.get(client_id, group.primary)]
        else:
            leads = self.search(client_id, group.primary, limit)
        keys = {
            _group_key(entry)
            for lead in leads
            if lead["IsActive"]
            for entry in lead["Groups"]
            if entry["IsPrimary"]
            and _same(entry["GroupType"], group.group_type)
            and (group.group_name is None or _same(entry["GroupName"], group.group_name))
        }
        found = self.store.scan(
            client_id, lambda p: any(_group_key(entry) in keys for entry in p["Groups"]), limit=limit
        )
        return _within(found, limit)

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of a clientId, active or not, as stored."""
        return self.store.profiles(client_id)

    def export(self, client_id: str | None = None) -> dict[str, Iterator[dict]]:
        """The profiles of every clientId (or one), as stored, read lazily from one moment's
        state: a state document's ``clients``."""
        return self.store.export(client_id)

    def import_state(
        self,
        clients: Mapping[str, Iterable[Any]] | Iterable[tuple[str, Iterable[Any]]],
        editor_for: Callable[[str], Editor],
    ) -> dict[str, int]:
        """Replace the profiles of each clientId of a state document's ``clients`` (a mapping, or
        its pairs of clientId and profiles, read as they come), and their preference history (it
        starts again with the import): 400 naming every invalid field (``clients.acme[0].Emails``),
        up to the error limit; 409 for a ProfileId or AlternateId used twice; nothing changes on
        an error. How many profiles each clientId now has."""
        problems: dict[str, Sequence[str]] = {}
        counts: dict[str, int] = {}
        limit = schemas.error_limit.get()

        def read(client_id: str, items: Iterable[Any]) -> Iterator[dict]:
            editor = editor_for(client_id)
            for index, item in enumerate(items):
                prefix = f"clients.{client_id}[{index}]"
                try:
                    data = schemas.load(IMPORTED, item, prefix=prefix)
                except BadRequest as error:
                    problems.update(
                        {
                            key if key.startswith(prefix) else f"{prefix}.{key}": v
                            for key, v in error.model_state.items()
                        }
                    )
                    if error.stopped or len(problems) >= limit:
                        raise BadRequest(
                            "The state document is invalid.", model_state=problems, stopped=True
                        ) from None
                    continue
                counts[client_id] += 1
                yield profiles.imported(data, editor, item)
                pace()

        def every() -> Iterator[tuple[str, Iterator[dict]]]:
            for client_id, items in clients.items() if isinstance(clients, Mapping) else clients:
                counts[client_id] = 0
                yield client_id, read(client_id, items)
            if problems:  # raised before the store puts anything in
                raise BadRequest("The state document is invalid.", model_state=problems)

        self.store.replace_clients(every())
        for client_id in counts:
            self.history.reset(client_id)
        return counts

    def _registered(
        self, client_id: str, unknown: list[tuple[str, str]], editor: Editor, stored: dict
    ) -> dict:
        """``stored``, once the types of open kinds it named are registered, and the editor told."""
        editor.warnings.extend(self.accounts.register(client_id, unknown))
        return stored

    def _change(
        self,
        client_id: str,
        target: Target,
        change: Change,
        editor: Editor,
        reasons: Mapping[Key, str | None] | None = None,
    ) -> dict:
        """Apply ``change`` to a profile, atomically, and record what it did to its preferences
        (with the ``reasons`` of those it archived, which ``change`` may fill in)."""
        earlier: Snapshot = {}
        if isinstance(target, AlternateId):
            stored = self.store.update_holder(
                client_id, target.kind, target.ident, _recording(change, earlier)
            )
        else:
            stored = self.store.update(client_id, target, _recording(change, earlier))
        self.history.record(client_id, earlier, stored, timestamp(editor.now), reasons)
        return stored


def _recording(change: Change, earlier: Snapshot) -> Change:
    """``change``, noting the preferences of the profile it is given first (of the last attempt:
    a shared store runs a change again when another process wrote the profile meanwhile)."""

    def recorded(current: dict) -> dict:
        earlier.clear()
        earlier.update(snapshot(current))
        return change(current)

    return recorded


def _holding(document: Mapping[str, Any], target: AlternateId) -> dict:
    """``document`` holding the AlternateId it was addressed by (added when it lacks it)."""
    entries = list(document.get("AlternateIds") or [])
    wanted = (target.kind.casefold(), target.ident.casefold())
    if all(schemas.alternate_id_pair(entry) != wanted for entry in entries):
        entries.append({"AlternateIdType": target.kind, "AlternateId": target.ident})
    return {**document, "AlternateIds": entries}


def _merged(sent: Mapping[str, Any], editor: Editor) -> Change:
    """A change that merges ``sent`` into a profile, validating the result as a create."""

    def change(current: dict) -> dict:
        data = schemas.load(CREATE, profiles.merge(profiles.document(current), sent))
        return profiles.revise(current, data, editor)

    return change


def _within(found: list[dict], limit: int) -> list[dict]:
    """``found``, unless it holds more than ``limit`` profiles: then 403, as documented."""
    if len(found) > limit:
        raise Forbidden(f"The search matches more than {limit} profiles; narrow it.")
    return found


def _same(text: str | None, wanted: str) -> bool:
    """Whether ``text`` is ``wanted``, ignoring case."""
    return (text or "").casefold() == wanted.casefold()


def _group_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    return ((entry["GroupType"] or "").casefold(), (entry["GroupName"] or "").casefold())


def _has_email(profile: dict, address: str, email_type: str) -> bool:
    """Whether ``profile`` has this email address of this type."""
    return any(
        _same(email["EmailAddress"], address) and _same(email["EmailAddressType"], email_type)
        for email in profile["Emails"]
    )


def _address_match(criteria: Search) -> Callable[[dict], bool]:
    """Whether a profile has one address holding every wanted field (Address1 as a part, when
    partial), and the wanted names."""
    names = _names_match(criteria.names, criteria.partial_names)

    def holds(address: Mapping[str, Any], name: str, wanted: str) -> bool:
        if name == "Address1" and criteria.partial_address1:
            return wanted.casefold() in (address[name] or "").casefold()
        return _same(address[name], wanted)

    return lambda profile: (
        names(profile)
        and any(
            all(holds(address, name, wanted) for name, wanted in criteria.address.items())
            for address in profile["Addresses"]
        )
    )


def _has_phone(profile: dict, digits: str, phone_type: str) -> bool:
    """Whether ``profile`` has a phone of these digits and of this type (case ignored)."""
    return any(
        schemas.phone_digits(phone["PhoneNumber"]) == digits and _same(phone["PhoneType"], phone_type)
        for phone in profile["PhoneNumbers"]
    )


def _names_match(wanted: Mapping[str, str], partial: bool = True) -> Callable[[dict], bool]:
    """Whether a profile's CustomerName holds each wanted part (or is it, when not ``partial``)."""
    folded = {name: text.casefold() for name, text in wanted.items()}

    def holds(held: str | None, text: str) -> bool:
        return text in (held or "").casefold() if partial else (held or "").casefold() == text

    return lambda profile: all(
        holds(profile["CustomerName"].get(name), text) for name, text in folded.items()
    )


def _custom_fields_match(wanted: Sequence[tuple[str, str | None]]) -> Callable[[dict], bool]:
    holds = profiles.holds_pairs(wanted, "Name")
    return lambda profile: holds(profile["CustomFields"])
