"""Where profiles are kept: the ``ProfileStore`` interface, and its in-memory implementation.

Everything above the store speaks to the interface only, so a store may hold profiles however it
likes. The in-memory store keeps each clientId's profiles and indexes (AlternateIds, unique;
emails and phones) as one immutable value, a ``Tenant`` of persistent maps (``immutables.Map``, a
hash array mapped trie: a change copies a few nodes, not the map). A profile is kept as its
compact JSON bytes: it costs about its size, holds no objects the garbage collector must visit,
and whoever reads it gets a fresh copy.

One lock serializes writes, so concurrent requests never lose or duplicate a profile, and a
read-modify-write (``update``) is atomic: the change runs under the lock, and the tenant is
replaced only if it returns. A write holds the lock for one profile's work, whatever the number
stored. A read takes the current tenant under the lock and works on it outside: searches, exports
and listings see one consistent moment, and never hold the lock while they visit profiles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Protocol, TypeVar

import orjson
from immutables import Map

from ..contract.errors import Conflict, NotFound
from ..contract.schemas import INT64_MAX, alternate_id_pair, phone_digits
from ..turns import pace

Change = Callable[[dict], dict]
# How long dropped tenants wait before they are freed: the freeing takes turns with every request,
# the answer of the reset that dropped them first.
FREE_AFTER_SECONDS = 0.05
Matches = Callable[[dict], bool]


class ProfileStore(Protocol):
    """Profiles per clientId, with ProfileIds unique across the server; every method is atomic.

    Profiles go in and come out as plain documents (the stored form ``profiles`` builds); none that
    a caller holds is ever the stored one. Unknown profiles are a ``NotFound``, taken AlternateIds a
    ``Conflict``. A ``limit`` on a search stops it once it has found one profile more than the
    limit: the caller learns that there are too many without the store reading them all."""

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

    def search(
        self,
        client_id: str,
        index: str,
        key: Hashable,
        *,
        inactive: bool = False,
        matches: Matches | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """The active profiles (``inactive``: and the inactive ones) whose ``index`` ("email" or
        "phone") holds ``key``, and that ``matches`` (if given), by ProfileId; at most ``limit`` + 1."""

    def scan(self, client_id: str, matches: Matches, *, limit: int | None = None) -> list[dict]:
        """The active profiles for which ``matches`` is true, by ProfileId; at most ``limit`` + 1."""

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of ``client_id``, active or not, by ProfileId."""

    def export(self, client_id: str | None = None) -> dict[str, Iterator[dict]]:
        """The profiles of every clientId (or one), as stored, each clientId's read lazily, by
        ProfileId, from one moment's state."""

    def replace_clients(self, clients: Iterable[tuple[str, Iterable[dict]]]) -> None:
        """Replace the profiles of each clientId named, atomically, reading them as they come; 409
        for a ProfileId held elsewhere or an AlternateId twice in a clientId, and then (as on any
        error raised while ``clients`` is read) nothing changes."""

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every profile and restart ProfileIds at 1, or forget one clientId's profiles."""


def alternate_id_keys(profile: dict) -> list[str]:
    """The index keys of a profile's AlternateIds, ignoring case."""
    return [
        alternate_id_key(*pair) for entry in profile["AlternateIds"] if (pair := alternate_id_pair(entry))
    ]


def alternate_id_key(kind: str, ident: str) -> str:
    """The index key of an AlternateId: one string (a third the memory of a pair), case folded,
    the type's length first so that no two pairs share a key."""
    kind, ident = kind.casefold(), ident.casefold()  # first: folding may change a length (ß: ss)
    return f"{len(kind)}:{kind}{ident}"


def email_keys(profile: dict) -> set[str]:
    """The index keys of a profile's email addresses, ignoring case."""
    return {entry["EmailAddress"].casefold() for entry in profile["Emails"] if entry.get("EmailAddress")}


def phone_keys(profile: dict) -> set[str]:
    """The index keys of a profile's phone numbers: their digits."""
    return {digits for entry in profile["PhoneNumbers"] if (digits := phone_digits(entry.get("PhoneNumber")))}


# Multi-valued indexes: many profiles may share an email address or a phone number.
SEARCH_INDEXES: dict[str, Callable[[dict], Iterable[Hashable]]] = {"email": email_keys, "phone": phone_keys}


def pack(profile: dict) -> bytes:
    """A profile as the store keeps it: compact JSON."""
    # Copied to a bytes object of its exact size: orjson's own keeps its spare capacity (a third more).
    return memoryview(orjson.dumps(profile)).tobytes()


def unpack(stored: bytes) -> dict:
    """A kept profile, as a fresh document."""
    return orjson.loads(stored)  # type: ignore[no-any-return]


def taken(entry: dict, holder: int) -> Conflict:
    """The 409 for an AlternateId ``entry`` another profile (``holder``; 0: one of an import still
    without a ProfileId) holds."""
    return Conflict(
        f"A profile with AlternateIdType '{entry['AlternateIdType']}' and "
        f"AlternateId '{entry['AlternateId']}' already exists.",
        conflict={**entry, "heldBy": holder},
    )


def exhausted() -> Conflict:
    """The 409 once the sequence has given INT64_MAX."""
    return Conflict(
        f"No ProfileId is left: the sequence has reached {INT64_MAX} (an imported "
        "ProfileId took it there); a reset starts it again at 1."
    )


def unknown(client_id: str, profile_id: int) -> NotFound:
    """The 404 for a ProfileId the clientId has no profile of."""
    return NotFound(f"No profile with ProfileId {profile_id} exists for '{client_id}'.")


def not_held(kind: str, ident: str) -> NotFound:
    """The 404 for an AlternateId no active profile holds."""
    return NotFound(f"No active profile has AlternateIdType '{kind}' and AlternateId '{ident}'.")


def used_twice(profile_id: int) -> Conflict:
    """The 409 for an import that gives one ProfileId to two profiles."""
    return Conflict(f"ProfileId {profile_id} is used twice.")


def kept(profiles: Iterable[bytes], keep: Matches, limit: int | None) -> list[dict]:
    """The ``profiles`` (packed) that ``keep`` keeps, in their order; the reading stops at
    ``limit`` + 1 of them, giving other requests turns as it goes."""
    found = []
    for stored in profiles:
        profile = unpack(stored)
        if keep(profile):
            found.append(profile)
            if limit is not None and len(found) > limit:
                break
        pace()
    return found


def _empty_indexes() -> Map:
    return Map({name: Map() for name in SEARCH_INDEXES})


@dataclass(frozen=True)
class Tenant:
    """One clientId's profiles and indexes, as one immutable value: a write makes a new one.

    ``search`` maps an index name to its keys, and each key to the ProfileIds holding it (a map
    used as a set)."""

    client_id: str
    profiles: Map = field(default_factory=Map)  # ProfileId -> packed profile
    alternate_ids: Map = field(default_factory=Map)  # alternate_id_key -> ProfileId
    search: Map = field(default_factory=_empty_indexes)

    def check_alternate_ids(self, profile: dict, profile_id: int | None = None) -> None:
        """409 if another profile holds one of ``profile``'s AlternateIds."""
        for entry in profile["AlternateIds"]:
            pair = alternate_id_pair(entry)
            holder = self.alternate_ids.get(alternate_id_key(*pair)) if pair is not None else None
            if holder is not None and holder != profile_id:
                raise taken(entry, holder)

    def put(self, profile: dict, earlier: dict | None = None) -> Tenant:
        """This tenant with ``profile`` stored under its ProfileId, replacing ``earlier`` (the
        version stored before, if any) and its index keys."""
        profile_id = profile["ProfileId"]
        tenant = self._unindexed(earlier) if earlier is not None else self
        alternate_ids = tenant.alternate_ids.update({key: profile_id for key in alternate_id_keys(profile)})
        with tenant.search.mutate() as search:
            for name, keys in SEARCH_INDEXES.items():
                with search[name].mutate() as index:
                    for key in keys(profile):
                        index[key] = index.get(key, Map()).set(profile_id, None)
                    search[name] = index.finish()
            indexes = search.finish()
        return replace(
            tenant,
            profiles=tenant.profiles.set(profile_id, pack(profile)),
            alternate_ids=alternate_ids,
            search=indexes,
        )

    def remove(self, profile_id: int) -> Tenant:
        """This tenant without a profile and its index keys; 404 if unknown."""
        tenant = self._unindexed(self.get(profile_id))
        return replace(tenant, profiles=tenant.profiles.delete(profile_id))

    def _unindexed(self, profile: dict) -> Tenant:
        """This tenant with ``profile``'s index keys removed (the profile itself stays)."""
        profile_id = profile["ProfileId"]
        with self.alternate_ids.mutate() as alternate_ids:
            for pair in alternate_id_keys(profile):
                del alternate_ids[pair]
            kept = alternate_ids.finish()
        with self.search.mutate() as search:
            for name, keys in SEARCH_INDEXES.items():
                with search[name].mutate() as index:
                    for key in keys(profile):
                        holders = index[key].delete(profile_id)
                        if holders:
                            index[key] = holders
                        else:
                            del index[key]
                    search[name] = index.finish()
            indexes = search.finish()
        return replace(self, alternate_ids=kept, search=indexes)

    def get(self, profile_id: int) -> dict:
        """A stored profile; 404 if unknown."""
        stored = self.profiles.get(profile_id)
        if stored is None:
            raise unknown(self.client_id, profile_id)
        return unpack(stored)

    def holder(self, kind: str, ident: str) -> dict:
        """The active profile holding an AlternateId; 404 if none (deactivated ones drop out)."""
        profile_id = self.alternate_ids.get(alternate_id_key(kind, ident))
        stored = self.profiles.get(profile_id) if profile_id is not None else None
        profile = unpack(stored) if stored is not None else None
        if profile is None or not profile["IsActive"]:
            raise not_held(kind, ident)
        return profile


class MemoryStore:
    """A ``ProfileStore`` in this process's memory; ProfileIds are increasing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # A persistent map too: an export, or a reset, takes every tenant at once, in O(1).
        self._tenants: Map = Map()
        self._next_id = 1

    def _tenant(self, client_id: str) -> Tenant:
        """A clientId's tenant (an empty one if it has none yet)."""
        return self._tenants.get(client_id) or Tenant(client_id)

    def _moment(self, client_id: str) -> Tenant:
        """A clientId's tenant as it is now, to read outside the lock."""
        with self._lock:
            return self._tenant(client_id)

    def create(self, client_id: str, profile: dict) -> dict:
        """Store a new profile under a fresh ProfileId; 409 if another holds one of its AlternateIds."""
        with self._lock:
            return self._create(self._tenant(client_id), profile)

    def _create(self, tenant: Tenant, profile: dict) -> dict:
        if self._next_id > INT64_MAX:
            raise exhausted()
        tenant.check_alternate_ids(profile)
        stored = {**profile, "ProfileId": self._next_id}
        self._tenants = self._tenants.set(tenant.client_id, tenant.put(stored))
        self._next_id += 1
        return unpack(pack(stored))

    def get(self, client_id: str, profile_id: int) -> dict:
        """One profile of ``client_id``, active or not; 404 if unknown or another clientId's."""
        return self._moment(client_id).get(profile_id)

    def holder(self, client_id: str, kind: str, ident: str) -> dict:
        """The active profile holding an AlternateId (case ignored); 404 if none."""
        return self._moment(client_id).holder(kind, ident)

    def update(self, client_id: str, profile_id: int, change: Change) -> dict:
        """Replace a profile by ``change(copy of it)``, atomically; 409 on a taken AlternateId."""
        with self._lock:
            tenant = self._tenant(client_id)
            return self._update(tenant, tenant.get(profile_id), change)

    def update_holder(self, client_id: str, kind: str, ident: str, change: Change) -> dict:
        """``update`` the active profile holding an AlternateId; 404 if none."""
        with self._lock:
            tenant = self._tenant(client_id)
            return self._update(tenant, tenant.holder(kind, ident), change)

    def upsert(
        self, client_id: str, kind: str, ident: str, change: Change, new: Callable[[], dict]
    ) -> tuple[dict, bool]:
        """Update the active holder of an AlternateId, or create ``new()`` if none; True if created."""
        with self._lock:
            tenant = self._tenant(client_id)
            try:
                current = tenant.holder(kind, ident)
            except NotFound:
                return self._create(tenant, new()), True
            return self._update(tenant, current, change), False

    def _update(self, tenant: Tenant, current: dict, change: Change) -> dict:
        profile_id = current["ProfileId"]
        earlier = unpack(pack(current))  # ``change`` may alter what it is given
        changed = {**change(current), "ProfileId": profile_id}
        tenant.check_alternate_ids(changed, profile_id)
        self._tenants = self._tenants.set(tenant.client_id, tenant.put(changed, earlier))
        return unpack(pack(changed))

    def delete(self, client_id: str, profile_id: int) -> None:
        """Forget a profile for good; its AlternateIds are free at once. 404 if unknown."""
        with self._lock:
            self._tenants = self._tenants.set(client_id, self._tenant(client_id).remove(profile_id))

    def search(
        self,
        client_id: str,
        index: str,
        key: Hashable,
        *,
        inactive: bool = False,
        matches: Matches | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """The active profiles (``inactive``: and the inactive ones) whose ``index`` ("email" or
        "phone") holds ``key``, and that ``matches`` (if given), by ProfileId; at most ``limit`` + 1."""
        tenant = self._moment(client_id)
        holders = tenant.search[index].get(key, Map())
        return _found(
            tenant, holders, lambda p: (inactive or p["IsActive"]) and (matches is None or matches(p)), limit
        )

    def scan(self, client_id: str, matches: Matches, *, limit: int | None = None) -> list[dict]:
        """The active profiles for which ``matches`` is true, by ProfileId; at most ``limit`` + 1."""
        tenant = self._moment(client_id)
        return _found(tenant, tenant.profiles, lambda p: p["IsActive"] and matches(p), limit)

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of ``client_id``, active or not, by ProfileId."""
        return list(_every(self._moment(client_id)))

    def export(self, client_id: str | None = None) -> dict[str, Iterator[dict]]:
        """The profiles of every clientId (or one), as stored, each clientId's read lazily, by
        ProfileId, from one moment's state."""
        with self._lock:
            tenants = self._tenants
        if client_id is not None:
            return {client_id: _every(tenants[client_id])} if client_id in tenants else {}
        # By clientId, as the Redis store lists them: the same on every process, whatever its hash seed.
        return {name: _every(tenants[name]) for name in _paced(sorted(tenants.keys()))}

    def replace_clients(self, clients: Iterable[tuple[str, Iterable[dict]]]) -> None:
        """Replace the profiles of each clientId named, atomically, reading them as they come. A
        profile without a ProfileId gets a fresh one; a ProfileId held elsewhere on the server, or
        an AlternateId twice in a clientId, is a 409 and nothing changes; so is any error raised
        while ``clients`` is read. The new tenants are built outside the lock, which is held only to
        check their ProfileIds against the sequence and the others', and to put them in."""
        numbered: set[int] = set()
        built: dict[str, tuple[Tenant, list[dict]]] = {}
        for client_id, profiles in clients:
            built[client_id] = _built(client_id, profiles, numbered)
            pace()
        with self._lock:
            # Only a ProfileId the sequence has passed can be held already.
            issued = [profile_id for profile_id in numbered if profile_id < self._next_id]
            held = {
                profile_id
                for c, tenant in self._tenants.items()
                if c not in built
                for profile_id in _held_among(tenant, issued)
            }
            if held:
                raise used_twice(min(held))
            next_id = max([self._next_id, *(profile_id + 1 for profile_id in numbered)])
            replaced = Map({c: self._tenants[c] for c in built if c in self._tenants})
            with self._tenants.mutate() as tenants:
                for client_id, (tenant, unnumbered) in built.items():
                    # Profiles without a ProfileId are numbered now, under the lock, from the sequence.
                    for profile in unnumbered:
                        profile["ProfileId"], next_id = next_id, next_id + 1
                        tenant = tenant.put(profile)
                    tenants[client_id] = tenant
                self._tenants = tenants.finish()
            self._next_id = next_id
        _free_later(replaced)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every profile and restart ProfileIds at 1, or forget one clientId's profiles.

        The old data is swapped out under the lock and freed by a background thread, so a reset
        costs the same whatever the amount of data."""
        with self._lock:
            if client_id is None:
                dropped, self._tenants, self._next_id = self._tenants, Map(), 1
            elif (gone := self._tenants.get(client_id)) is not None:
                dropped, self._tenants = Map({client_id: gone}), self._tenants.delete(client_id)
            else:
                dropped = Map()
        _free_later(dropped)


def _found(tenant: Tenant, ids: Iterable[int], keep: Matches, limit: int | None) -> list[dict]:
    """The profiles of ``tenant`` among ``ids`` that ``keep`` keeps, by ProfileId; the scan stops
    at ``limit`` + 1 of them."""
    found = kept((tenant.profiles[profile_id] for profile_id in ids), keep, limit)
    return sorted(found, key=lambda p: p["ProfileId"])


T = TypeVar("T")


def _paced(items: Iterable[T]) -> Iterator[T]:
    for item in items:
        yield item
        pace()


def _every(tenant: Tenant) -> Iterator[dict]:
    """Every profile of ``tenant``, by ProfileId, giving other requests turns as it goes."""
    pace()
    for profile_id in sorted(tenant.profiles.keys()):
        yield unpack(tenant.profiles[profile_id])
        pace()


def _held_among(tenant: Tenant, profile_ids: Iterable[int]) -> Iterator[int]:
    """Those of ``profile_ids`` that ``tenant`` holds."""
    return (profile_id for profile_id in profile_ids if profile_id in tenant.profiles)


def _built(client_id: str, profiles: Iterable[dict], numbered: set[int]) -> tuple[Tenant, list[dict]]:
    """A new tenant of the numbered ``profiles`` (their ProfileIds added to ``numbered``; 409 for
    one already there), and (copied) those still without a ProfileId; 409 for an AlternateId held
    twice."""
    tenant, unnumbered = Tenant(client_id), []
    for profile in profiles:
        tenant.check_alternate_ids(profile)
        profile_id = profile["ProfileId"]
        if profile_id:
            if profile_id in numbered:
                raise used_twice(profile_id)
            numbered.add(profile_id)
            tenant = tenant.put(profile)
        else:
            unnumbered.append(dict(profile))
            # Claim its AlternateIds now, so that a later profile of the import that repeats one is a 409.
            claimed = {key: 0 for key in alternate_id_keys(profile)}
            tenant = replace(tenant, alternate_ids=tenant.alternate_ids.update(claimed))
        pace()
    return tenant, unnumbered


def _free_later(tenants: Map) -> None:
    """Free ``tenants`` in a background thread, a little at a time (``_let_go``)."""
    if tenants:
        # Handed over in a list the thread empties: the thread's own arguments would otherwise hold
        # the tenants until it ends, and free them all at once.
        threading.Thread(target=_let_go, args=([tenants],), daemon=True).start()


def _let_go(holder: list[Map]) -> None:
    """Free the tenants in ``holder`` a thousand entries at a time, giving other requests turns,
    so the server keeps answering (the reset's own response first) while a large store is freed:
    dropped whole, a tenant of a million profiles would be freed in one go, holding the
    interpreter meanwhile."""
    time.sleep(FREE_AFTER_SECONDS)  # the answer of the reset or import that dropped them goes first
    _shrink(holder.pop())


def _shrink(table: Map) -> None:
    """Empty ``table`` (held by no one else) a thousand keys at a time, the maps it holds (and
    the tenants' tables) first."""
    while table:
        with table.mutate() as shrinking:
            removed = [shrinking.pop(key) for key in list(islice(table.keys(), 1000))]
            table = shrinking.finish()
        while removed:
            value = removed.pop()
            if isinstance(value, Tenant):
                tables = [value.profiles, value.alternate_ids, value.search]
                del value  # from here, each table's only holder is ``tables``
                while tables:
                    _shrink(tables.pop())
            elif isinstance(value, Map):
                _shrink(value)
            pace()
        pace()
