"""Profiles kept in Redis, shared by every process of a sandbox: ``MemoryStore``'s behaviour, in Redis.

Each write is one Lua script on the keys of one clientId (one Redis Cluster hash slot): it checks
the AlternateIds, stores the profile and fixes every index, or does nothing. A read-modify-write
reads the profile, runs the change in Python, and commits only if the stored bytes are still those
it read (compare-and-set), else starts again. ProfileIds come from a server-wide sequence, and a
server-wide map records which clientId claimed each; both live in the server's hash slot, so their
scripts run apart from the clientId's, and these steps are not atomic with it:

- A create claims its ProfileId in the map (pending) before its clientId's script stores the
  profile, and marks the claim done after; an import refuses a ProfileId claimed and pending, so
  it never takes one a create is about to store. A create refused by its script leaves its
  ProfileId used up; one whose process dies between the steps leaves it pending for good.
- An import stages each clientId's profiles beside its keys, claims its ProfileIds in the map
  (pending) once every clientId is read and checked, moves the sequence past them, then swaps each
  clientId's staged keys in by one script per clientId, and marks its claims done: a reader may
  see one clientId replaced and another not yet. An import that dies while it swaps leaves the
  swapped clientIds replaced; one that dies before it has marked its claims done leaves them
  pending for good (refused to imports, skipped by the sequence).
- The map is not told of deletes and resets (a reset must not cost a step per profile): an import
  reads the map, then asks the clientId named there whether it still holds the ProfileId.
- A full reset empties each registered clientId, then the sequence, the map and the registry: a
  write landing meanwhile may outlive it.

Reads of one batch (500 profiles) are one moment; a search or scan reads batch after batch, so a
profile changed meanwhile is seen once, before or after its change. ``profiles`` and ``export``
read a copy of the clientId's profiles made in one moment (when its reading starts)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import random
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar, cast

from redis.typing import EncodableT, FieldT

from ..contract.errors import Conflict
from ..contract.schemas import INT64_MAX, alternate_id_pair
from ..domain.store import (
    SEARCH_INDEXES,
    Change,
    Matches,
    alternate_id_key,
    alternate_id_keys,
    exhausted,
    kept,
    not_held,
    pack,
    taken,
    unknown,
    unpack,
    used_twice,
)
from ..turns import pace
from .shared import UNAVAILABLE, Shared

PART = "profiles"  # the name this store registers its clientIds under
# The keys of one clientId, a fixed set, so that a reset unlinks them all at once: its profiles
# (hash: ProfileId field -> packed profile), its ProfileIds (sorted set of fields, read in order),
# its AlternateIds (hash: alternate_id_key -> ProfileId field), one sorted set per search index
# (members "key\0field"), and a marker that the clientId has profiles (an empty set included), as
# MemoryStore keeps a tenant until a reset. A ProfileId field is the ProfileId in 19 digits, so
# that the lexicographic order of fields and members (ZRANGEBYLEX) is the order of ProfileIds.
NAMES = ("by_id", "ids", "alternate_ids", *SEARCH_INDEXES, "written")
BY_ID, IDS, ALTERNATE_IDS, WRITTEN = 0, 1, 2, len(NAMES) - 1
# Server-wide: the last ProfileId issued (a string INCR counts on), and who claimed each ProfileId:
# "?clientId" while the write is under way, "=clientId" once done.
SEQUENCE, OWNERS = "profiles:sequence", "profiles:owners"
BATCH = 500  # profiles read or written per round trip
# How long the keys of an import or an export under way live unused: freed should its process die.
IDLE_MS = 3_600_000
FIELD_DIGITS = 19  # INT64_MAX's (the scripts' 19)
MAX_BACK_OFF_SECONDS = 0.05  # the longest wait before a profile's write is tried again
T = TypeVar("T")

# Lua numbers are doubles: ProfileIds, up to INT64_MAX, stay strings in every script, and only
# Redis (INCR) counts.

# KEYS: a clientId's keys (NAMES). ARGV: a ProfileId field, the SHA-1 of the bytes stored under it
# ('' when none must be), the new bytes ('' to delete), then lists each led by its length: the
# AlternateId keys to add, to drop, and for each search index, the members to add, to drop.
# Answers 'changed' (nothing done) if the field holds other bytes, {position among those added,
# holder} if another profile holds an AlternateId, else 'ok' once everything is written.
WRITE = """
local field, expected, packed = ARGV[1], ARGV[2], ARGV[3]
local current = redis.call('HGET', KEYS[1], field)
if expected == '' then
  if current then return 'changed' end
elseif not current or redis.sha1hex(current) ~= expected then
  return 'changed'
end
local at = 4
local function list()
  local first = at + 1
  at = first + tonumber(ARGV[at])
  return first, at - 1
end
local first, last = list()
for i = first, last do
  local holder = redis.call('HGET', KEYS[3], ARGV[i])
  if holder and holder ~= field then return {i - first + 1, holder} end
end
for i = first, last do redis.call('HSET', KEYS[3], ARGV[i], field) end
first, last = list()
for i = first, last do redis.call('HDEL', KEYS[3], ARGV[i]) end
for index = 4, #KEYS - 1 do
  first, last = list()
  for i = first, last do redis.call('ZADD', KEYS[index], 0, ARGV[i]) end
  first, last = list()
  for i = first, last do redis.call('ZREM', KEYS[index], ARGV[i]) end
end
if packed == '' then
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
else
  redis.call('HSET', KEYS[1], field, packed)
  redis.call('ZADD', KEYS[2], 0, field)
end
redis.call('SET', KEYS[#KEYS], '1')
return 'ok'
"""

# KEYS: an import's staged keys of one clientId (NAMES), then its list of profiles awaiting a
# ProfileId. ARGV: how long they live unused (ms), '1' to refuse an AlternateId staged already,
# then for each profile: its ProfileId field ('' when it has none yet: it waits in the list, its
# AlternateIds held by '0'), its bytes, and lists each led by its length: its AlternateId keys and,
# for each search index, its members. Answers {profile's position, key's position, holder} for the
# first AlternateId staged already, else 0. Marks the clientId staged (its ``written``), profiles or none.
STAGE = """
local at, position = 3, 0
while at <= #ARGV do
  position = position + 1
  local field, packed = ARGV[at], ARGV[at + 1]
  local first = at + 3
  at = first + tonumber(ARGV[at + 2])
  if ARGV[2] == '1' then
    for i = first, at - 1 do
      local holder = redis.call('HGET', KEYS[3], ARGV[i])
      if holder then return {position, i - first + 1, holder} end
    end
  end
  for i = first, at - 1 do redis.call('HSET', KEYS[3], ARGV[i], field == '' and '0' or field) end
  for index = 4, #KEYS - 2 do
    first = at + 1
    at = first + tonumber(ARGV[at])
    for i = first, at - 1 do redis.call('ZADD', KEYS[index], 0, ARGV[i]) end
  end
  if field == '' then
    redis.call('RPUSH', KEYS[#KEYS], packed)
  else
    redis.call('HSET', KEYS[1], field, packed)
    redis.call('ZADD', KEYS[2], 0, field)
  end
end
redis.call('SET', KEYS[#KEYS - 1], '1')
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return 0
"""

# KEYS: a clientId's keys (NAMES), its staged ones in the same order, and its staged list of
# profiles awaiting a ProfileId (empty by now). Each key is replaced by its staged one (a staged
# key missing was empty).
COMMIT = """
local count = (#KEYS - 1) / 2
if redis.call('EXISTS', KEYS[2 * count]) == 0 then
  return redis.error_reply('the staged import of this clientId has expired')
end
for i = 1, count do
  redis.call('UNLINK', KEYS[i])
  if redis.call('EXISTS', KEYS[count + i]) == 1 then
    redis.call('RENAME', KEYS[count + i], KEYS[i])
    redis.call('PERSIST', KEYS[i])
  end
end
redis.call('UNLINK', KEYS[#KEYS])
return 0
"""

# KEYS: a sorted set whose members end in a ProfileId field, and the hash of profiles. ARGV: the
# ZRANGEBYLEX bounds, how many, and how long both keys live on (ms; '0': as they are). Answers
# each member followed by the profile it names.
RANGE = """
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, ARGV[3])
local found = {}
for i, member in ipairs(members) do
  found[2 * i - 1] = member
  found[2 * i] = redis.call('HGET', KEYS[2], string.sub(member, -19))
end
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return found
"""

# KEYS: a clientId's profiles and ProfileIds, then the names of their copies. ARGV: how long the
# copies live unused (ms).
SNAPSHOT = """
for i = 1, 2 do
  if redis.call('COPY', KEYS[i], KEYS[i + 2]) == 1 then redis.call('PEXPIRE', KEYS[i + 2], ARGV[1]) end
end
return 0
"""

# KEYS: a clientId's AlternateIds and profiles. ARGV: an alternate_id_key. Answers the field and
# the profile of its holder, or nil.
HOLDER = """
local field = redis.call('HGET', KEYS[1], ARGV[1])
if not field then return false end
return {field, redis.call('HGET', KEYS[2], field)}
"""

# KEYS: the sequence, the owners, and (an import's) the record of its claims. ARGV: how many
# ProfileIds, and the owner to record. Answers the fields of the next ProfileIds no one claimed
# (an import claims those it names before it moves the sequence past them), each claimed; fewer
# once the sequence has reached INT64_MAX (INCR refuses to overflow).
ISSUE = """
local issued = {}
while #issued < tonumber(ARGV[1]) do
  local counted = redis.pcall('INCR', KEYS[1])
  if type(counted) == 'table' then
    if string.find(counted.err, 'overflow', 1, true) then break end
    return counted  -- any other refusal (a full Redis) is the caller's error
  end
  local id = redis.call('GET', KEYS[1])
  local field = string.rep('0', 19 - #id) .. id
  if redis.call('HSETNX', KEYS[2], field, ARGV[2]) == 1 then
    issued[#issued + 1] = field
    if KEYS[3] then redis.call('HSET', KEYS[3], field, '') end
  end
end
if KEYS[3] then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
return issued
"""

# KEYS: the owners, and an import's record of its claims. ARGV: the owner to record, how long the
# record lives unused (ms), then pairs of a field and the owner it must still have ('' for none).
# Claims every one (recording what each had), or, if one has changed since it was read, none: 1.
CLAIM = """
for i = 3, #ARGV, 2 do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i + 1] then return 1 end
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
"""

# KEYS: the sequence. ARGV: a ProfileId (decimal, no leading zero) it must have reached. Numbers
# compared as strings: by length, then digit by digit.
REACH = """
local current = redis.call('GET', KEYS[1]) or '0'
if #ARGV[1] > #current or (#ARGV[1] == #current and ARGV[1] > current) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 0
"""


class _Changed(Exception):
    """The profile is no longer the one read: read it again."""


class _Found(NamedTuple):
    """A stored profile: its field, its bytes, and a fresh document of them."""

    field: str
    stored: bytes
    profile: dict


@dataclass(frozen=True)
class _Entries:
    """What a profile puts in the indexes: each AlternateId key (with the first entry holding it),
    and each search index's keys."""

    alternate_ids: dict[str, dict]
    search: dict[str, set[str]]

    @classmethod
    def of(cls, profile: dict | None) -> _Entries:
        """The index entries of ``profile`` (None: of no profile)."""
        if profile is None:
            return cls({}, {name: set() for name in SEARCH_INDEXES})
        alternate_ids: dict[str, dict] = {}
        holding = [entry for entry in profile["AlternateIds"] if alternate_id_pair(entry)]
        for key, entry in zip(alternate_id_keys(profile), holding, strict=True):
            alternate_ids.setdefault(key, entry)
        search = {name: {str(key) for key in keys(profile)} for name, keys in SEARCH_INDEXES.items()}
        return cls(alternate_ids, search)

    def members(self, name: str, field: str) -> set[str]:
        """The members of search index ``name`` for this profile stored under ``field``."""
        return {f"{key}\0{field}" for key in self.search[name]}


@dataclass
class _Import:
    """An import under way: the clientIds staged (each with its position), the ProfileIds named,
    and those of a clientId's set replaced by a later one (still refused if held, as MemoryStore does)."""

    token: str
    clients: dict[str, int] = field(default_factory=dict)
    numbered: set[int] = field(default_factory=set)
    dropped: list[bytes] = field(default_factory=list)


class RedisStore:
    """A ``ProfileStore`` in Redis, shared by every process using ``shared``; ProfileIds are increasing."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._sequence = shared.server_key(SEQUENCE)
        self._owners = shared.server_key(OWNERS)
        connection = shared.redis
        self._write_script = connection.register_script(WRITE)
        self._stage_script = connection.register_script(STAGE)
        self._commit_script = connection.register_script(COMMIT)
        self._range_script = connection.register_script(RANGE)
        self._snapshot_script = connection.register_script(SNAPSHOT)
        self._holder_script = connection.register_script(HOLDER)
        self._issue_script = connection.register_script(ISSUE)
        self._claim_script = connection.register_script(CLAIM)
        self._reach_script = connection.register_script(REACH)

    def _keys(self, client_id: str, prefix: str = "") -> list[str]:
        """The keys of ``client_id`` (NAMES), or of a copy of them named by ``prefix``."""
        return [self.shared.client_key(client_id, f"profiles:{prefix}{name}") for name in NAMES]

    def create(self, client_id: str, profile: dict) -> dict:
        """Store a new profile under a fresh ProfileId; 409 if another holds one of its AlternateIds."""
        keys, entries = self._keys(client_id), _Entries.of(profile)
        # Checked first, so that a create refused without a race uses up no ProfileId; the
        # sequence too, as MemoryStore checks it before the AlternateIds. Without AlternateIds,
        # ISSUE's own refusal is the same answer, and the round trip is spared.
        if entries.alternate_ids:
            checks = self.shared.redis.pipeline(transaction=False)
            checks.get(self._sequence)
            for key in entries.alternate_ids:
                checks.hget(keys[ALTERNATE_IDS], key)
            last, *holders = checks.execute()
            if int(last or 0) >= INT64_MAX:
                raise exhausted()
            for entry, holder in zip(entries.alternate_ids.values(), holders, strict=True):
                if holder is not None:
                    raise taken(entry, int(holder))
        while True:
            # The ProfileId is claimed before the clientId's script runs: if that script refuses the
            # profile (an AlternateId taken meanwhile), the ProfileId stays used up, as a SQL Server
            # IDENTITY value does when its insert fails.
            issued = self._issue_script(keys=[self._sequence, self._owners], args=[1, f"?{client_id}"])
            if not issued:
                raise exhausted()
            number = issued[0].decode()
            try:
                stored = self._put(client_id, number, None, {**profile, "ProfileId": int(number)})
                break
            except _Changed:
                # A profile written as a full reset went by holds this ProfileId: it stays that
                # profile's, and this one takes the next.
                self.shared.redis.hset(self._owners, number, f"={client_id}")
            except BaseException:
                self.shared.redis.hdel(self._owners, number)
                raise
        done = self.shared.redis.pipeline(transaction=False)
        done.hset(self._owners, number, f"={client_id}")
        self.shared.register(PART, client_id, done)  # after the write: see Shared.register
        done.execute()
        return stored

    def get(self, client_id: str, profile_id: int) -> dict:
        """One profile of ``client_id``, active or not; 404 if unknown or another clientId's."""
        return self._read(client_id, profile_id).profile

    def holder(self, client_id: str, kind: str, ident: str) -> dict:
        """The active profile holding an AlternateId (case ignored); 404 if none."""
        return self._holding(client_id, kind, ident).profile

    def update(self, client_id: str, profile_id: int, change: Change) -> dict:
        """Replace a profile by ``change(copy of it)``, atomically; 409 on a taken AlternateId."""
        return self._update(client_id, lambda: self._read(client_id, profile_id), change)

    def update_holder(self, client_id: str, kind: str, ident: str, change: Change) -> dict:
        """``update`` the active profile holding an AlternateId; 404 if none."""
        return self._update(client_id, lambda: self._holding(client_id, kind, ident), change)

    def upsert(
        self, client_id: str, kind: str, ident: str, change: Change, new: Callable[[], dict]
    ) -> tuple[dict, bool]:
        """Update the active holder of an AlternateId, or create ``new()`` if none; True if created."""
        lost = 0  # races lost to other writers of the holder
        while True:
            found = self._active_holder(client_id, kind, ident)
            if found is not None:
                try:
                    return self._change(client_id, found, change), False
                except _Changed:
                    _back_off(lost)
                    lost += 1
                    continue
            try:
                return self.create(client_id, new()), True
            except Conflict:
                # Refused because a holder came meanwhile: update it, as if it had been there first.
                if self._active_holder(client_id, kind, ident) is None:
                    raise

    def _update(self, client_id: str, read: Callable[[], _Found], change: Change) -> dict:
        """Apply ``change`` to the profile ``read`` finds, reading it again until it is unchanged
        from its read to its write."""
        lost = 0  # races lost to other writers of the profile
        while True:
            try:
                return self._change(client_id, read(), change)
            except _Changed:
                _back_off(lost)
                lost += 1

    def _change(self, client_id: str, found: _Found, change: Change) -> dict:
        """Store ``change(found profile)`` in its place; _Changed if it was changed meanwhile."""
        profile_id = found.profile["ProfileId"]  # read first: ``change`` may alter what it is given
        changed = {**change(found.profile), "ProfileId": profile_id}
        return self._put(client_id, found.field, found.stored, changed)

    def delete(self, client_id: str, profile_id: int) -> None:
        """Forget a profile for good; its AlternateIds are free at once. 404 if unknown."""
        lost = 0  # races lost to other writers of the profile
        while True:
            found = self._read(client_id, profile_id)
            try:
                self._swap(client_id, found.field, found.stored, b"", _Entries.of(None))
                return
            except _Changed:
                _back_off(lost)
                lost += 1

    def _read(self, client_id: str, profile_id: int) -> _Found:
        """A stored profile; 404 if unknown."""
        number = f"{profile_id:0{FIELD_DIGITS}d}"
        stored = cast(bytes | None, self.shared.redis.hget(self._keys(client_id)[BY_ID], number))
        if stored is None:
            raise unknown(client_id, profile_id)
        return _Found(number, stored, unpack(stored))

    def _holding(self, client_id: str, kind: str, ident: str) -> _Found:
        """The active profile holding an AlternateId; 404 if none."""
        found = self._active_holder(client_id, kind, ident)
        if found is None:
            raise not_held(kind, ident)
        return found

    def _active_holder(self, client_id: str, kind: str, ident: str) -> _Found | None:
        """The active profile holding an AlternateId, or None (deactivated ones drop out)."""
        keys = self._keys(client_id)
        found = self._holder_script(
            keys=[keys[ALTERNATE_IDS], keys[BY_ID]], args=[alternate_id_key(kind, ident)]
        )
        if found is None:
            return None
        number, stored = found
        profile = unpack(stored)
        return _Found(number.decode(), stored, profile) if profile["IsActive"] else None

    def _put(self, client_id: str, number: str, stored: bytes | None, profile: dict) -> dict:
        """Store ``profile`` under ``number`` in place of ``stored`` (None: nothing); it as stored."""
        packed = pack(profile)
        self._swap(client_id, number, stored, packed, _Entries.of(profile))
        return unpack(packed)

    def _swap(
        self, client_id: str, number: str, stored: bytes | None, packed: bytes, after: _Entries
    ) -> None:
        """Replace ``stored`` (None: nothing) under ``number`` by ``packed`` (b"": nothing) with
        the index entries ``after``, if ``stored`` is still there (else _Changed); 409, nothing
        written, if another profile holds one of the AlternateIds."""
        before = _Entries.of(unpack(stored) if stored is not None else None)
        added = [key for key in after.alternate_ids if key not in before.alternate_ids]
        args: list[Any] = [
            number,
            hashlib.sha1(stored, usedforsecurity=False).hexdigest() if stored is not None else "",
            packed,
        ]
        args += _counted(added) + _counted(before.alternate_ids.keys() - after.alternate_ids.keys())
        for name in SEARCH_INDEXES:
            new, old = after.members(name, number), before.members(name, number)
            args += _counted(new - old) + _counted(old - new)
        answer = self._write_script(keys=self._keys(client_id), args=args)
        if answer == b"changed":
            raise _Changed
        if isinstance(answer, list):
            position, holder = answer
            raise taken(after.alternate_ids[added[position - 1]], int(holder))

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
        keys = self._keys(client_id)
        prefix = f"{key}\0".encode()
        # The range holds every member that starts with the prefix: those of longer keys drop out.
        members = self._range(
            keys[NAMES.index(index)], keys[BY_ID], b"[" + prefix, b"(" + prefix[:-1] + b"\1"
        )
        holders = (stored for member, stored in members if len(member) == len(prefix) + FIELD_DIGITS)
        return kept(holders, lambda p: (inactive or p["IsActive"]) and (matches is None or matches(p)), limit)

    def scan(self, client_id: str, matches: Matches, *, limit: int | None = None) -> list[dict]:
        """The active profiles for which ``matches`` is true, by ProfileId; at most ``limit`` + 1."""
        keys = self._keys(client_id)
        every = (stored for _, stored in self._range(keys[IDS], keys[BY_ID], b"-", b"+"))
        return kept(every, lambda p: p["IsActive"] and matches(p), limit)

    def _range(
        self, index: str, profiles: str, low: bytes, high: bytes, idle_ms: int = 0
    ) -> Iterator[tuple[bytes, bytes]]:
        """The members of ``index`` from ``low`` to ``high`` (ZRANGEBYLEX bounds), each with the
        profile it names, read a batch at a time (each batch one moment); ``idle_ms``: how long
        both keys live on after each batch."""
        while True:
            answer = self._range_script(keys=[index, profiles], args=[low, high, BATCH, idle_ms])
            pairs = list(zip(answer[::2], answer[1::2], strict=True))
            yield from pairs
            if len(pairs) < BATCH:
                return
            low = b"(" + pairs[-1][0]

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of ``client_id``, active or not, by ProfileId."""
        return list(self._every(client_id))

    def export(self, client_id: str | None = None) -> dict[str, Iterator[dict]]:
        """The profiles of every clientId (or one), as stored, each clientId's read lazily, by
        ProfileId, from one moment's state."""
        # Each clientId's own moment, when its reading starts: no one moment spans hash slots.
        named = [client_id] if client_id is not None else sorted(self.shared.clients(PART))
        kept = []
        # Only clientIds holding profiles (or an empty set of them), as MemoryStore's tenants.
        for names in _batched(named, BATCH):
            checks = self.shared.redis.pipeline(transaction=False)
            for name in names:
                checks.exists(self._keys(name)[WRITTEN])
            kept += [name for name, written in zip(names, checks.execute(), strict=True) if written]
            pace()
        return {name: self._every(name) for name in kept}

    def _every(self, client_id: str) -> Iterator[dict]:
        """Every profile of ``client_id``, by ProfileId, from a copy made when the reading starts,
        giving other requests turns as it goes; the copy is dropped at the end (or expires)."""
        pace()
        keys, copies = self._keys(client_id), self._keys(client_id, f"export:{uuid.uuid4().hex}:")
        self._snapshot_script(keys=[keys[BY_ID], keys[IDS], copies[BY_ID], copies[IDS]], args=[IDLE_MS])
        try:
            for _, stored in self._range(copies[IDS], copies[BY_ID], b"-", b"+", IDLE_MS):
                yield unpack(stored)
                pace()
        finally:
            # Unreachable, Redis frees the copy once it has lived IDLE_MS unused.
            with contextlib.suppress(*UNAVAILABLE):
                self.shared.redis.unlink(copies[BY_ID], copies[IDS])

    def replace_clients(self, clients: Iterable[tuple[str, Iterable[dict]]]) -> None:
        """Replace the profiles of each clientId named, atomically, reading them as they come; 409
        for a ProfileId held elsewhere or an AlternateId twice in a clientId, and then (as on any
        error raised while ``clients`` is read) nothing changes."""
        # Each clientId is staged beside its keys as it is read, and swapped in (atomically per
        # clientId) once all are read and checked and their ProfileIds claimed.
        importing = _Import(uuid.uuid4().hex)
        try:
            for client_id, profiles in clients:
                self._stage(importing, client_id, profiles)
                pace()
            self._claim(importing)
            self._number(importing)
        except BaseException:
            self._abandon(importing)
            raise
        for client_id in importing.clients:
            staged = self._staged(importing, client_id)
            self._commit_script(keys=[*self._keys(client_id), *staged])
            self.shared.register(PART, client_id)  # after the write: see Shared.register
            pace()
        self._settle(importing, lambda client_id, claims: {number: f"={client_id}" for number, _ in claims})

    def _staged(self, importing: _Import, client_id: str) -> list[str]:
        """The staged keys of ``client_id`` (NAMES), then its list of profiles awaiting a ProfileId."""
        staged = self._keys(client_id, f"import:{importing.token}:")
        return [*staged, self.shared.client_key(client_id, f"profiles:import:{importing.token}:pending")]

    def _claims(self, importing: _Import, client_id: str) -> str:
        """The record of the ProfileIds claimed for ``client_id`` and of whom they had before."""
        return self.shared.server_key(f"profiles:import:{importing.token}:{importing.clients[client_id]}")

    def _stage(self, importing: _Import, client_id: str, profiles: Iterable[dict]) -> None:
        """Stage the profiles of ``client_id`` as they come (a clientId named again replaces its
        first set); 409 for a ProfileId named twice in the import, or an AlternateId twice here."""
        staged = self._staged(importing, client_id)
        if client_id in importing.clients:
            importing.dropped += cast(list[bytes], self.shared.redis.zrange(staged[IDS], 0, -1))
            self.shared.redis.unlink(*staged)
        else:
            importing.clients[client_id] = len(importing.clients)
        batch: list[dict] = []
        for profile in profiles:
            batch.append(profile)
            profile_id = profile["ProfileId"]
            twice = profile_id if profile_id and profile_id in importing.numbered else None
            if profile_id:
                importing.numbered.add(profile_id)
            if twice is not None or len(batch) == BATCH:
                self._stage_batch(staged, batch, twice)
                batch = []
            pace()
        self._stage_batch(staged, batch)  # even empty: it marks the clientId staged

    def _stage_batch(
        self, staged: list[str], profiles: list[dict], twice: int | None = None, *, check: bool = True
    ) -> None:
        """Stage ``profiles`` (``check``: refusing an AlternateId staged already, 409); then 409 for
        ``twice``, a ProfileId the last of them repeats (unless an AlternateId is refused first, as
        MemoryStore checks a profile's AlternateIds first)."""
        args: list[Any] = [IDLE_MS, int(check)]
        every = []
        for profile in profiles:
            number = f"{profile['ProfileId']:0{FIELD_DIGITS}d}" if profile["ProfileId"] else ""
            entries = _Entries.of(profile)
            every.append(entries)
            args += [number, pack(profile), *_counted(entries.alternate_ids)]
            for name in SEARCH_INDEXES:
                args += _counted(entries.members(name, number) if number else ())
        answer = self._stage_script(keys=staged, args=args)
        if answer:
            position, key, holder = answer
            alternate_ids = every[position - 1].alternate_ids
            raise taken(list(alternate_ids.values())[key - 1], int(holder))
        if twice is not None:
            raise used_twice(twice)

    def _claim(self, importing: _Import) -> None:
        """Claim (pending) every ProfileId the import names; 409 for the lowest held elsewhere, and
        then none is claimed."""
        held: list[int] = []
        for client_id in importing.clients:
            numbered = self._staged(importing, client_id)[IDS]
            start = b"-"
            while numbers := cast(
                list[bytes], self.shared.redis.zrangebylex(numbered, start, b"+", 0, BATCH)
            ):
                start = b"(" + numbers[-1]
                # Once one is held, the others are only looked at, for the lowest.
                held += self._claim_batch(importing, client_id, numbers, claim=not held)
                pace()
        for numbers in _batched(importing.dropped, BATCH):
            held += self._held(importing, numbers, self._owned(numbers))
        if held:
            raise used_twice(min(held))

    def _claim_batch(
        self, importing: _Import, client_id: str, numbers: list[bytes], *, claim: bool
    ) -> list[int]:
        """Those of ``numbers`` held elsewhere; if none (and ``claim``), all are claimed for ``client_id``."""
        while True:
            owners = self._owned(numbers)
            held = self._held(importing, numbers, owners)
            if held or not claim:
                return held
            expected = [
                part for pair in zip(numbers, owners, strict=True) for part in (pair[0], pair[1] or b"")
            ]
            claims = [self._owners, self._claims(importing, client_id)]
            if self._claim_script(keys=claims, args=[f"?{client_id}", IDLE_MS, *expected]) == 0:
                return []
            # An owner changed since it was read: read them again.

    def _owned(self, numbers: list[bytes]) -> list[bytes | None]:
        """The owners the map records for ``numbers`` (None: none)."""
        return cast(list[bytes | None], self.shared.redis.hmget(self._owners, numbers))

    def _held(self, importing: _Import, numbers: list[bytes], owners: list[bytes | None]) -> list[int]:
        """The ProfileIds among ``numbers`` (owned as ``owners`` say) held by a clientId the import
        does not replace, or claimed by a write under way."""
        held: list[int] = []
        others: dict[str, list[str]] = {}
        for number, owner in zip(numbers, owners, strict=True):
            if owner is None:
                continue
            if owner.startswith(b"?"):
                held.append(int(number))
            elif (other := owner[1:].decode()) not in importing.clients:
                others.setdefault(other, []).append(number.decode())
        # The map is not told of deletes and resets: ask each clientId whether it still holds them
        # (all in one round trip).
        if others:
            asks = self.shared.redis.pipeline(transaction=False)
            for other, named in others.items():
                asks.zmscore(self._keys(other)[IDS], named)
            for named, scores in zip(others.values(), asks.execute(), strict=True):
                held += [
                    int(number) for number, score in zip(named, scores, strict=True) if score is not None
                ]
        return held

    def _number(self, importing: _Import) -> None:
        """Move the sequence past every ProfileId named, then give the profiles without one the
        next ones, in the order they came."""
        if importing.numbered:
            self._reach_script(keys=[self._sequence], args=[max(importing.numbered)])
        for client_id in importing.clients:
            staged, claims = self._staged(importing, client_id), self._claims(importing, client_id)
            start = 0
            while waiting := cast(
                list[bytes], self.shared.redis.lrange(staged[-1], start, start + BATCH - 1)
            ):
                start += BATCH
                issued = self._issue_script(
                    keys=[self._sequence, self._owners, claims], args=[len(waiting), f"?{client_id}", IDLE_MS]
                )
                if len(issued) < len(waiting):
                    raise exhausted()
                numbered = [
                    {**unpack(stored), "ProfileId": int(number)}
                    for stored, number in zip(waiting, issued, strict=True)
                ]
                self._stage_batch(staged, numbered, check=False)
                pace()

    def _abandon(self, importing: _Import) -> None:
        """Give back what a failed import claimed, and drop what it staged."""
        self._settle(importing, lambda client_id, claims: dict(claims))
        for client_id in importing.clients:
            self.shared.redis.unlink(*self._staged(importing, client_id))

    def _settle(
        self, importing: _Import, owners: Callable[[str, list[tuple[bytes, bytes]]], dict[FieldT, EncodableT]]
    ) -> None:
        """Set the owner of each ProfileId the import claimed to ``owners(clientId, claims)`` (b"":
        none; a claim is a field and the owner it had before), and drop the records of claims."""
        for client_id in importing.clients:
            claims = self._claims(importing, client_id)
            for batch in _batched(self.shared.redis.hscan_iter(claims, count=BATCH), BATCH):
                settled = owners(client_id, batch)
                kept = {number: owner for number, owner in settled.items() if owner}
                writes = self.shared.redis.pipeline(transaction=False)
                if kept:
                    writes.hset(self._owners, mapping=kept)
                if len(kept) < len(settled):
                    writes.hdel(self._owners, *(number for number, owner in settled.items() if not owner))
                writes.execute()
                pace()
            self.shared.redis.unlink(claims)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every profile and restart ProfileIds at 1, or forget one clientId's profiles."""
        # One UNLINK per clientId (one command on one slot: atomic, no MULTI needed): Redis frees
        # the keys in the background, so a reset costs the same whatever the amount of data.
        if client_id is not None:
            self.shared.redis.unlink(*self._keys(client_id))
            return
        for names in _batched(self.shared.take_clients(PART), BATCH):
            unlinks = self.shared.redis.pipeline(transaction=False)
            for name in names:
                # As a raw command: a cluster's pipeline refuses UNLINK of many keys, even of one slot.
                unlinks.execute_command("UNLINK", *self._keys(name))
            unlinks.execute()
            pace()
        self.shared.redis.unlink(self._sequence, self._owners)


def _back_off(attempt: int) -> None:
    """Wait a moment before writing a profile again, at random and longer each time: writers that
    lost a race for one profile then take turns, where retrying at once they would keep colliding
    (300 racing PATCHes of one profile: a p99 of 10 s without it)."""
    time.sleep(random.uniform(0, min(MAX_BACK_OFF_SECONDS, 0.001 * 2**attempt)))


def _counted(items: Iterable[T]) -> list[int | T]:
    """``items`` led by their number: a list as the scripts read it."""
    listed = list(items)
    return [len(listed), *listed]


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
