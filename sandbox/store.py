"""Where profiles are kept: the ``ProfileStore`` interface, and its in-memory implementation.

Everything above the store speaks to the interface only, so a store may hold profiles however it
likes. The in-memory store keeps them per clientId, with their indexes: AlternateIds (unique),
emails and phones. One lock guards every read and write, so concurrent requests never lose or
duplicate a profile, and a read-modify-write (``update``) is atomic: the change runs under the
lock, and the stored profile and every index are replaced only if it returns. Profiles go in and
come out as deep copies, so no caller can change stored state behind the lock.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import Conflict, NotFound
from .schemas import alternate_id_pair, phone_digits

Change = Callable[[dict], dict]


class ProfileStore(Protocol):
    """Profiles per clientId, with ProfileIds unique across the server; every method is atomic.

    Profiles go in and come out as plain documents (the stored form ``profiles`` builds); none that
    a caller holds is ever the stored one. Unknown profiles are a ``NotFound``, taken AlternateIds a
    ``Conflict``."""

    def create(self, client_id: str, profile: dict) -> dict:
        """Store a new profile under a fresh ProfileId; 409 if another holds one of its AlternateIds."""

    def get(self, client_id: str, profile_id: int) -> dict:
        """One profile of ``client_id``, active or not; 404 if unknown or another clientId's."""

    def holder(self, client_id: str, kind: str, ident: str) -> dict:
        """The active profile holding an AlternateId (case ignored); 404 if none."""

    def update(self, client_id: str, profile_id: int, change: Change) -> dict:
        """Replace a profile by ``change(copy of it)``, atomically; 409 on a taken AlternateId."""

    def update_holder(self, client_id: str, kind: str, ident: str, change: Change) -> dict:
        """``update`` the active profile holding an AlternateId; 404 if none."""

    def upsert(
        self, client_id: str, kind: str, ident: str, change: Change, new: Callable[[], dict]
    ) -> tuple[dict, bool]:
        """Update the active holder of an AlternateId, or create ``new()`` if none; True if created."""

    def delete(self, client_id: str, profile_id: int) -> None:
        """Forget a profile for good; its AlternateIds are free at once. 404 if unknown."""

    def search(self, client_id: str, index: str, key: Hashable, *, inactive: bool = False) -> list[dict]:
        """The active profiles (``inactive``: and the inactive ones) whose ``index`` ("email" or
        "phone") holds ``key``, by ProfileId."""

    def scan(self, client_id: str, matches: Callable[[dict], bool]) -> list[dict]:
        """The active profiles for which ``matches`` is true, by ProfileId."""

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of ``client_id``, active or not, in creation order."""

    def export(self, client_id: str | None = None) -> dict[str, list[dict]]:
        """The profiles of every clientId (or one), as stored."""

    def replace_clients(self, clients: dict[str, list[dict]]) -> None:
        """Replace the profiles of each clientId named, atomically; 409 for a ProfileId held
        elsewhere or an AlternateId twice in a clientId, and then nothing changes."""

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every profile and restart ProfileIds at 1, or forget one clientId's profiles."""


def alternate_id_keys(profile: dict) -> list[tuple[str, str]]:
    """The index keys of a profile's AlternateIds: (type, id), ignoring case."""
    return [key for entry in profile["AlternateIds"] if (key := alternate_id_pair(entry)) is not None]


def email_keys(profile: dict) -> set[str]:
    """The index keys of a profile's email addresses, ignoring case."""
    return {entry["EmailAddress"].casefold() for entry in profile["Emails"] if entry.get("EmailAddress")}


def phone_keys(profile: dict) -> set[str]:
    """The index keys of a profile's phone numbers: their digits."""
    return {digits for entry in profile["PhoneNumbers"] if (digits := phone_digits(entry.get("PhoneNumber")))}


# Multi-valued indexes: many profiles may share an email address or a phone number.
SEARCH_INDEXES: dict[str, Callable[[dict], Iterable[Hashable]]] = {"email": email_keys, "phone": phone_keys}


@dataclass
class Tenant:
    """One clientId's profiles and indexes."""

    client_id: str
    profiles: dict[int, dict] = field(default_factory=dict)
    alternate_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    search: dict[str, dict[Hashable, set[int]]] = field(
        default_factory=lambda: {name: {} for name in SEARCH_INDEXES}
    )

    def check_alternate_ids(self, profile: dict, profile_id: int | None = None) -> None:
        """409 if another profile holds one of ``profile``'s AlternateIds."""
        for entry in profile["AlternateIds"]:
            holder = self.alternate_ids.get(alternate_id_pair(entry))  # type: ignore[arg-type]
            if holder is not None and holder != profile_id:
                raise Conflict(
                    f"A profile with AlternateIdType '{entry['AlternateIdType']}' and "
                    f"AlternateId '{entry['AlternateId']}' already exists.",
                    conflict={**entry, "heldBy": holder},
                )

    def put(self, profile: dict) -> None:
        """Store ``profile`` under its ProfileId, replacing any earlier version and its index keys."""
        profile_id = profile["ProfileId"]
        earlier = self.profiles.get(profile_id)
        if earlier is not None:
            self._unindex(earlier)
        self.profiles[profile_id] = profile  # an update keeps its place: creation order
        self.alternate_ids.update((key, profile_id) for key in alternate_id_keys(profile))
        for name, keys in SEARCH_INDEXES.items():
            for key in keys(profile):
                self.search[name].setdefault(key, set()).add(profile_id)

    def remove(self, profile_id: int) -> None:
        """Forget a profile and its index keys; 404 if unknown."""
        self._unindex(self.get(profile_id))
        del self.profiles[profile_id]

    def _unindex(self, profile: dict) -> None:
        for pair in alternate_id_keys(profile):
            del self.alternate_ids[pair]
        for name, keys in SEARCH_INDEXES.items():
            for key in keys(profile):
                holders = self.search[name][key]
                holders.discard(profile["ProfileId"])
                if not holders:
                    del self.search[name][key]

    def get(self, profile_id: int) -> dict:
        """A stored profile (not a copy); 404 if unknown."""
        try:
            return self.profiles[profile_id]
        except KeyError:
            raise NotFound(f"No profile with ProfileId {profile_id} exists for '{self.client_id}'.") from None

    def holder(self, kind: str, ident: str) -> dict:
        """The active profile holding an AlternateId; 404 if none (deactivated ones drop out)."""
        profile_id = self.alternate_ids.get((kind.casefold(), ident.casefold()))
        profile = self.profiles.get(profile_id) if profile_id is not None else None
        if profile is None or not profile["IsActive"]:
            raise NotFound(f"No active profile has AlternateIdType '{kind}' and AlternateId '{ident}'.")
        return profile


class MemoryStore:
    """A ``ProfileStore`` in this process's memory; ProfileIds are increasing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {}
        self._next_id = 1

    def _tenant(self, client_id: str, *, create: bool = False) -> Tenant:
        """A clientId's tenant; an unknown one reads as empty and is kept only when ``create``."""
        tenant = self._tenants.get(client_id)
        if tenant is None:
            tenant = Tenant(client_id)
            if create:
                self._tenants[client_id] = tenant
        return tenant

    def create(self, client_id: str, profile: dict) -> dict:
        """Store a new profile under a fresh ProfileId; 409 if another holds one of its AlternateIds."""
        with self._lock:
            return copy.deepcopy(self._create(self._tenant(client_id, create=True), profile))

    def _create(self, tenant: Tenant, profile: dict) -> dict:
        stored = copy.deepcopy(profile)
        tenant.check_alternate_ids(stored)
        stored["ProfileId"] = self._next_id
        self._next_id += 1
        tenant.put(stored)
        return stored

    def get(self, client_id: str, profile_id: int) -> dict:
        """One profile of ``client_id``, active or not; 404 if unknown or another clientId's."""
        with self._lock:
            return copy.deepcopy(self._tenant(client_id).get(profile_id))

    def holder(self, client_id: str, kind: str, ident: str) -> dict:
        """The active profile holding an AlternateId (case ignored); 404 if none."""
        with self._lock:
            return copy.deepcopy(self._tenant(client_id).holder(kind, ident))

    def update(self, client_id: str, profile_id: int, change: Change) -> dict:
        """Replace a profile by ``change(copy of it)``, atomically; 409 on a taken AlternateId."""
        with self._lock:
            tenant = self._tenant(client_id)
            return copy.deepcopy(self._update(tenant, tenant.get(profile_id), change))

    def update_holder(self, client_id: str, kind: str, ident: str, change: Change) -> dict:
        """``update`` the active profile holding an AlternateId; 404 if none."""
        with self._lock:
            tenant = self._tenant(client_id)
            return copy.deepcopy(self._update(tenant, tenant.holder(kind, ident), change))

    def upsert(
        self, client_id: str, kind: str, ident: str, change: Change, new: Callable[[], dict]
    ) -> tuple[dict, bool]:
        """Update the active holder of an AlternateId, or create ``new()`` if none; True if created."""
        with self._lock:
            tenant = self._tenant(client_id, create=True)
            try:
                current = tenant.holder(kind, ident)
            except NotFound:
                return copy.deepcopy(self._create(tenant, new())), True
            return copy.deepcopy(self._update(tenant, current, change)), False

    @staticmethod
    def _update(tenant: Tenant, current: dict, change: Change) -> dict:
        changed = change(copy.deepcopy(current))
        changed["ProfileId"] = current["ProfileId"]
        tenant.check_alternate_ids(changed, current["ProfileId"])
        tenant.put(changed)
        return changed

    def delete(self, client_id: str, profile_id: int) -> None:
        """Forget a profile for good; its AlternateIds are free at once. 404 if unknown."""
        with self._lock:
            self._tenant(client_id).remove(profile_id)

    def search(self, client_id: str, index: str, key: Hashable, *, inactive: bool = False) -> list[dict]:
        """The active profiles (``inactive``: and the inactive ones) whose ``index`` ("email" or
        "phone") holds ``key``, by ProfileId."""
        with self._lock:
            tenant = self._tenant(client_id)
            found = (tenant.profiles[profile_id] for profile_id in tenant.search[index].get(key, ()))
            kept = (p for p in found if inactive or p["IsActive"])
            return copy.deepcopy(sorted(kept, key=lambda p: p["ProfileId"]))

    def scan(self, client_id: str, matches: Callable[[dict], bool]) -> list[dict]:
        """The active profiles for which ``matches`` is true, by ProfileId."""
        with self._lock:
            tenant = self._tenant(client_id)
            found = (p for p in tenant.profiles.values() if p["IsActive"] and matches(p))
            # An import may store ProfileIds out of order: sort, as the index searches do.
            return copy.deepcopy(sorted(found, key=lambda p: p["ProfileId"]))

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every profile and restart ProfileIds at 1, or forget one clientId's profiles.

        The old data is swapped out under the lock and freed by a background thread, so a reset
        costs the same whatever the amount of data."""
        with self._lock:
            if client_id is None:
                dropped: object = self._tenants
                self._tenants, self._next_id = {}, 1
            else:
                dropped = self._tenants.pop(client_id, None)
        threading.Thread(target=_let_go, args=(dropped,), daemon=True).start()

    def export(self, client_id: str | None = None) -> dict[str, list[dict]]:
        """The profiles of every clientId (or one), as stored."""
        with self._lock:
            chosen = [client_id] if client_id is not None else list(self._tenants)
            return {
                c: copy.deepcopy(list(self._tenants[c].profiles.values()))
                for c in chosen
                if c in self._tenants
            }

    def replace_clients(self, clients: dict[str, list[dict]]) -> None:
        """Replace the profiles of each clientId named, atomically. A profile without a ProfileId
        gets a fresh one; a ProfileId held elsewhere on the server, or an AlternateId twice in a
        clientId, is a 409 and nothing changes."""
        with self._lock:
            taken = {
                pid for c, tenant in self._tenants.items() if c not in clients for pid in tenant.profiles
            }
            next_id = max(
                [
                    self._next_id,
                    *(p["ProfileId"] + 1 for ps in clients.values() for p in ps if p["ProfileId"]),
                ]
            )
            tenants = {}
            for client_id, profiles in clients.items():
                tenant = tenants[client_id] = Tenant(client_id)
                for profile in copy.deepcopy(profiles):
                    if not profile["ProfileId"]:
                        profile["ProfileId"], next_id = next_id, next_id + 1
                    if profile["ProfileId"] in taken:
                        raise Conflict(f"ProfileId {profile['ProfileId']} is used twice.")
                    taken.add(profile["ProfileId"])
                    tenant.check_alternate_ids(profile)
                    tenant.put(profile)
            self._tenants.update(tenants)
            self._next_id = next_id

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of ``client_id``, active or not, in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._tenant(client_id).profiles.values()))


def _let_go(dropped: dict[str, Tenant] | Tenant | None) -> None:
    """Free dropped tenants a few entries at a time, yielding the GIL between batches, so the
    server keeps answering (the reset's own response first) while a large store is freed."""
    tenants = dropped.values() if isinstance(dropped, dict) else [dropped] if dropped else []
    for tenant in tenants:
        tables: list[dict] = [tenant.profiles, tenant.alternate_ids, *tenant.search.values()]
        for table in tables:
            while table:
                for _ in range(min(len(table), 200)):
                    table.popitem()
                time.sleep(0)
