"""The history of every profile's preferences: each change, on the sandbox clock, in order.

A profile keeps its consents' history itself (a consent is only ever added), so this log holds
what a profile does not: each preference as it was set, changed, and archived or removed. The
profile service records every write here; the log of one profile is bounded, oldest first out.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from .profiles import ENTRY_KEYS, preferences_of

Key = tuple[str | None, Any, str]


class HistoryBase(ABC):
    """Each profile's preference history, per clientId, bounded, kept by a subclass."""

    @abstractmethod
    def _append(self, client_id: str, profile_id: int, entries: list[dict]) -> None:
        """Add ``entries`` to a profile's log, dropping its oldest past the bound, in one step."""

    @abstractmethod
    def _log(self, client_id: str, profile_id: int) -> Iterable[dict]:
        """A profile's log, oldest first."""

    @abstractmethod
    def forget(self, client_id: str, profile_id: int) -> None:
        """Forget a deleted profile's history."""

    @abstractmethod
    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every history, or ``client_id``'s."""

    def record(
        self,
        client_id: str,
        earlier: Snapshot,
        after: Mapping[str, Any],
        moment: str,
        reasons: Mapping[Key, str | None] | None = None,
    ) -> None:
        """Record how a write changed a profile's preferences, from their ``snapshot`` before it:
        each one set or changed, as it now is; each one gone, as ``Archived`` at ``moment``, with
        its reason (by where it was) kept as the vendor keeps it, in the ``$Reason_Code`` attribute."""
        now = snapshot(after)
        changes = [
            _entry(collection, holder, stored)
            for key, (collection, holder, stored) in now.items()
            if key not in earlier or earlier[key][2] != stored
        ]
        changes += [
            _archived(_entry(collection, holder, stored), moment, (reasons or {}).get(key))
            for key, (collection, holder, stored) in earlier.items()
            if key not in now
        ]
        if changes:
            self._append(client_id, after["ProfileId"], changes)

    def preferences(self, client_id: str, profile_id: int, filter_id: str | None = None) -> list[dict]:
        """A profile's preference history, oldest first (only ``filter_id``'s, when given)."""
        log = self._log(client_id, profile_id)
        wanted = filter_id.casefold() if filter_id is not None else None
        return [dict(entry) for entry in log if wanted is None or entry["FilterId"].casefold() == wanted]


class History(HistoryBase):
    """Each profile's preference history in this process, at most ``limit`` entries a profile."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._entries: dict[str, dict[int, deque[dict]]] = {}

    def _append(self, client_id: str, profile_id: int, entries: list[dict]) -> None:
        with self._lock:
            log = self._entries.setdefault(client_id, {}).setdefault(profile_id, deque(maxlen=self._limit))
            log.extend(entries)

    def _log(self, client_id: str, profile_id: int) -> list[dict]:
        with self._lock:
            return list(self._entries.get(client_id, {}).get(profile_id, ()))

    def forget(self, client_id: str, profile_id: int) -> None:
        """Forget a deleted profile's history."""
        with self._lock:
            self._entries.get(client_id, {}).pop(profile_id, None)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every history, or ``client_id``'s."""
        with self._lock:
            if client_id is None:
                self._entries = {}
            else:
                self._entries.pop(client_id, None)


Snapshot = dict[Key, tuple[str | None, Mapping[str, Any], dict]]


def snapshot(profile: Mapping[str, Any] | None) -> Snapshot:
    """A profile's preferences by where they are: (collection, contact element, FilterId). A write
    replaces preferences and never changes one in place, so a snapshot stays true to its moment."""
    if profile is None:
        return {}
    return {
        (collection, ENTRY_KEYS[collection](holder) if collection else None, stored["FilterId"].casefold()): (
            collection,
            holder,
            stored,
        )
        for collection, holder, stored in preferences_of(profile)
    }


# What a history entry says of the contact element a preference belongs to.
CONTACT = {
    "Emails": ("EmailAddress",),
    "PhoneNumbers": ("PhoneNumber",),
    "Addresses": ("Address1", "City", "PostalCode"),
}


def _archived(entry: dict, moment: str, reason: str | None) -> dict:
    attributes = list(entry["PreferenceAttributes"])
    if reason is not None:
        attributes.append({"Key": "$Reason_Code", "Value": reason})
    return entry | {
        "PreferenceStatus": "Archived",
        "ReasonCode": reason,
        "LastModifiedDate": moment,
        "PreferenceAttributes": attributes,
    }


def _entry(collection: str | None, holder: Mapping[str, Any], stored: Mapping[str, Any]) -> dict:
    """A preference as the history shows it: itself, and the contact element it belongs to."""
    contact = {name: holder.get(name) for name in CONTACT.get(collection or "", ())}
    return dict(stored) | {"ContactElement": contact or None}
