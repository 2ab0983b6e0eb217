"""The clock, journal, preference history, accounts and bearer tokens in Redis, shared by every process."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

import redis
from redis.client import Pipeline

from ..domain.accounts import KINDS, AccountsBase, Kind, baseline
from ..domain.auth import MAX_TOKENS, Token
from ..domain.clock import ClockBase
from ..domain.history import HistoryBase
from ..domain.journal import JournalBase, footprint
from .shared import Shared

T = TypeVar("T")

# The journal, server-wide: its entries ("<id> <payload>") and, beside each, "<cost> <client>"
# (the clientId in JSON: null for none), so that the bounds and a client's reset read only the
# small half. Each script keeps both lists and the byte count in step.
RECORD = """
local id = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('RPUSH', KEYS[2], id .. ' ' .. ARGV[1])
local held = redis.call('RPUSH', KEYS[3], ARGV[2] .. ' ' .. ARGV[3])
local total = redis.call('INCRBY', KEYS[4], ARGV[2])
local size, most = tonumber(ARGV[4]), tonumber(ARGV[5])
while held > 1 and (held > size or total > most) do
  redis.call('LPOP', KEYS[2])
  total = redis.call('DECRBY', KEYS[4], string.match(redis.call('LPOP', KEYS[3]), '^%d+'))
  held = held - 1
end
return id
"""
# A client's entries are blanked where they stand (no entry or note is empty), then removed at
# once: the entries themselves never travel through the script.
FORGET_CLIENT = """
local dropped, found = 0, false
for index, note in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local cost, client = string.match(note, '^(%d+) (.*)$')
  if client == ARGV[1] then
    redis.call('LSET', KEYS[1], index - 1, '')
    redis.call('LSET', KEYS[2], index - 1, '')
    dropped, found = dropped + tonumber(cost), true
  end
end
if found then
  redis.call('LREM', KEYS[1], 0, '')
  redis.call('LREM', KEYS[2], 0, '')
  redis.call('DECRBY', KEYS[3], dropped)
end
"""
# A clientId's preference history is one hash, so that a client's reset is one UNLINK: for each
# profile, the field "<ProfileId>" holds "<first> <last>" and "<ProfileId>:<n>" its n-th entry.
APPEND = """
local first, last = 1, 0
local span = redis.call('HGET', KEYS[1], ARGV[1])
if span then
  local a, b = string.match(span, '^(%d+) (%d+)$')
  first, last = tonumber(a), tonumber(b)
end
for index = 3, #ARGV do
  last = last + 1
  redis.call('HSET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', last), ARGV[index])
end
while last - first + 1 > tonumber(ARGV[2]) do
  redis.call('HDEL', KEYS[1], ARGV[1] .. ':' .. string.format('%d', first))
  first = first + 1
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d %d', first, last))
"""
READ = """
local span = redis.call('HGET', KEYS[1], ARGV[1])
if not span then return {} end
local first, last = string.match(span, '^(%d+) (%d+)$')
local log = {}
for n = tonumber(first), tonumber(last) do
  log[#log + 1] = redis.call('HGET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', n))
end
return log
"""
FORGET_PROFILE = """
local span = redis.call('HGET', KEYS[1], ARGV[1])
if not span then return end
local first, last = string.match(span, '^(%d+) (%d+)$')
for n = tonumber(first), tonumber(last) do
  redis.call('HDEL', KEYS[1], ARGV[1] .. ':' .. string.format('%d', n))
end
redis.call('HDEL', KEYS[1], ARGV[1])
"""
# The tokens, server-wide: each token's JSON by its value, and two sorted sets of the values, by
# expiry (the expired are dropped) and by issue (past MAX_TOKENS, the oldest are dropped).
KEEP = """
for _, value in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])) do
  redis.call('HDEL', KEYS[1], value)
  redis.call('ZREM', KEYS[3], value)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
while redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) do
  local oldest = redis.call('ZPOPMIN', KEYS[3])[1]
  redis.call('HDEL', KEYS[1], oldest)
  redis.call('ZREM', KEYS[2], oldest)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[1])
"""


class RedisClock(ClockBase):
    """The sandbox clock of every process: real UTC time, unless frozen at a time kept in Redis."""

    def __init__(self, shared: Shared) -> None:
        self._redis = shared.redis
        self._key = shared.server_key("clock")

    def _frozen_at(self) -> datetime | None:
        return _frozen(self._redis.get(self._key))

    def _freeze(self, moment: datetime | None) -> None:
        if moment is None:
            self._redis.unlink(self._key)
        else:
            self._redis.set(self._key, moment.isoformat())

    def _move(self, move: Callable[[datetime | None], datetime]) -> None:
        def attempt(pipe: Pipeline) -> None:
            moved = move(_frozen(pipe.get(self._key)))
            pipe.multi()
            pipe.set(self._key, moved.isoformat())

        _watched(self._redis, self._key, attempt)


class RedisJournal(JournalBase):
    """The newest vendor requests of every process, one sequence of ids: at most ``size`` of them,
    and at most ``max_bytes`` of them together (the oldest are dropped first; the newest one is
    always kept)."""

    def __init__(self, shared: Shared, size: int, max_bytes: int) -> None:
        self._redis = shared.redis
        self._next, self._entries, self._notes, self._bytes = (
            shared.server_key(f"journal:{name}") for name in ("next", "entries", "notes", "bytes")
        )
        self._size = size
        self._max_bytes = max_bytes
        self._record = shared.redis.register_script(RECORD)
        self._forget_client = shared.redis.register_script(FORGET_CLIENT)

    def record(self, entry: dict[str, Any]) -> None:
        """Add ``entry``, numbering it, and drop the oldest past either bound."""
        # The moments (datetimes) are kept as ISO 8601 text, and named, so that they come back as they were.
        moments = [key for key, value in entry.items() if isinstance(value, datetime)]
        plain = {key: value.isoformat() if key in moments else value for key, value in entry.items()}
        self._record(
            keys=[self._next, self._entries, self._notes, self._bytes],
            args=[
                json.dumps([moments, plain], separators=(",", ":")),
                footprint(entry),
                json.dumps(entry["clientId"]),
                self._size,
                self._max_bytes,
            ],
        )

    @property
    def held_bytes(self) -> int:
        """About how many bytes the entries hold together."""
        return int(self._redis.get(self._bytes) or 0)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every entry, or only those of ``client_id``."""
        if client_id is None:
            # The ids go on from where they were, as they do in one process.
            self._redis.unlink(self._entries, self._notes, self._bytes)
        else:
            self._forget_client(keys=[self._entries, self._notes, self._bytes], args=[json.dumps(client_id)])

    def _held(self) -> Iterator[dict[str, Any]]:
        for raw in self._redis.lrange(self._entries, 0, -1):
            number, _, payload = cast(bytes, raw).partition(b" ")
            moments, plain = json.loads(payload)
            yield {"id": int(number), **plain, **{key: datetime.fromisoformat(plain[key]) for key in moments}}


class RedisHistory(HistoryBase):
    """Each profile's preference history, per clientId, kept in Redis: at most ``limit`` entries a profile."""

    def __init__(self, shared: Shared, limit: int) -> None:
        self._shared = shared
        self._limit = limit
        self._append_script = shared.redis.register_script(APPEND)
        self._read = shared.redis.register_script(READ)
        self._forget = shared.redis.register_script(FORGET_PROFILE)

    def _append(self, client_id: str, profile_id: int, entries: list[dict[str, Any]]) -> None:
        self._append_script(
            keys=[self._key(client_id)],
            args=[profile_id, self._limit, *(json.dumps(entry) for entry in entries)],
        )
        self._shared.register("history", client_id)

    def _log(self, client_id: str, profile_id: int) -> Iterator[dict[str, Any]]:
        return (json.loads(entry) for entry in self._read(keys=[self._key(client_id)], args=[profile_id]))

    def forget(self, client_id: str, profile_id: int) -> None:
        """Forget a deleted profile's history."""
        self._forget(keys=[self._key(client_id)], args=[profile_id])

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every history, or ``client_id``'s."""
        if client_id is None:
            _forget_every_client(self._shared, "history")
        else:
            self._shared.redis.unlink(self._key(client_id))

    def _key(self, client_id: str) -> str:
        return self._shared.client_key(client_id, "history")


class RedisAccounts(AccountsBase):
    """Every clientId's account configuration, kept in Redis: each account a hash of the kinds it
    holds other than the settings give it (so that a reset unlinks the hash)."""

    def __init__(self, shared: Shared, settings: Mapping[str, Mapping[str, Any]]) -> None:
        self._shared = shared
        self._baseline = baseline(settings)

    def _look(
        self, client_id: str, names: Collection[str] | None, look: Callable[[Mapping[str, Kind]], T]
    ) -> T:
        own = self._baseline.get(client_id, {})
        if names is None:
            stored = {
                _text(name): raw for name, raw in self._shared.redis.hgetall(self._key(client_id)).items()
            }
            # The settings' kinds first, as they are in one process; the others in a fixed order.
            kinds = dict(own) | {name: _kind(stored[name]) for name in KINDS if name in stored}
            return look(kinds)
        wanted = list(names)
        raws = self._shared.redis.hmget(self._key(client_id), wanted)
        return look(
            {
                name: own.get(name, Kind()) if raw is None else _kind(raw)
                for name, raw in zip(wanted, raws, strict=True)
            }
        )

    def _change(self, client_id: str, names: Collection[str], change: Callable[[Mapping[str, Kind]], T]) -> T:
        key, wanted = self._key(client_id), list(names)
        own = self._baseline.get(client_id, {})

        def attempt(pipe: Pipeline) -> T:
            raws = pipe.hmget(key, wanted)
            kinds = {
                # The settings' own kinds must learn nothing from the account's changes.
                name: copy.deepcopy(own.get(name, Kind())) if raw is None else _kind(raw)
                for name, raw in zip(wanted, raws, strict=True)
            }
            result = change(kinds)
            pipe.multi()
            pipe.hset(key, mapping={name: _stored(kind) for name, kind in kinds.items()})
            self._shared.register("accounts", client_id, pipe)  # in the same transaction as the write
            return result

        return _watched(self._shared.redis, key, attempt)

    def _replace(self, client_id: str, kinds: Mapping[str, Kind]) -> None:
        if kinds:
            with self._shared.redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._key(client_id), mapping={name: _stored(kind) for name, kind in kinds.items()})
                self._shared.register("accounts", client_id, pipe)  # after the write: see Shared.register
                pipe.execute()

    def _clients(self) -> list[str]:
        return [*self._baseline, *sorted(set(self._shared.clients("accounts")) - set(self._baseline))]

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Back to the settings' configuration: every account, or ``client_id``'s."""
        if client_id is None:
            _forget_every_client(self._shared, "accounts")
        else:
            self._shared.redis.unlink(self._key(client_id))

    def _key(self, client_id: str) -> str:
        return self._shared.client_key(client_id, "accounts")


class RedisTokens:
    """The bearer tokens every process's authority issued, kept in Redis (``Authority(tokens=...)``)."""

    def __init__(self, shared: Shared) -> None:
        self._redis = shared.redis
        self._tokens, self._by_expiry, self._by_issue, self._next = (
            shared.server_key(f"tokens:{name}") for name in ("held", "expiry", "issue", "next")
        )
        self._keep = shared.redis.register_script(KEEP)

    def keep(self, value: str, token: Token, now: datetime) -> None:
        """Keep ``token`` as ``value``, dropping the expired ones and, past ``MAX_TOKENS``, the oldest."""
        held = {"clientId": token.client_id, "userId": token.user_id, "expires": token.expires.isoformat()}
        self._keep(
            keys=[self._tokens, self._by_expiry, self._by_issue, self._next],
            args=[value, json.dumps(held), token.expires.timestamp(), now.timestamp(), MAX_TOKENS],
        )

    def find(self, value: str, now: datetime) -> Token | None:
        """The live token ``value`` names, or None (an expired one is forgotten)."""
        raw = self._redis.hget(self._tokens, value)
        if raw is None:
            return None
        held = json.loads(raw)
        token = Token(held["clientId"], held["userId"], datetime.fromisoformat(held["expires"]))
        if now >= token.expires:
            with self._redis.pipeline() as pipe:
                pipe.hdel(self._tokens, value)
                pipe.zrem(self._by_expiry, value)
                pipe.zrem(self._by_issue, value)
                pipe.execute()
            return None
        return token

    def clear(self) -> None:
        """Forget every token."""
        self._redis.unlink(self._tokens, self._by_expiry, self._by_issue)


def _watched(client: redis.Redis, key: str, attempt: Callable[[Pipeline], T]) -> T:
    """What ``attempt`` returns, run on ``key`` watched: it reads, calls ``multi`` and queues its
    writes, and runs again, on what is there then, whenever another process changed the key first."""
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                result = attempt(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                continue


def _forget_every_client(shared: Shared, part: str) -> None:
    """Unlink ``part``'s key (named as the part) of every client it holds data of."""
    with shared.redis.pipeline(transaction=False) as pipe:
        for client_id in shared.take_clients(part):
            pipe.unlink(shared.client_key(client_id, part))
        pipe.execute()


def _text(raw: bytes | str) -> str:
    # The client answers bytes (decode_responses=False), as shared.connect makes it.
    return cast(bytes, raw).decode()


def _frozen(raw: bytes | str | None) -> datetime | None:
    """The time a clock key holds (None: no key, the clock runs)."""
    return None if raw is None else datetime.fromisoformat(_text(raw))


def _kind(raw: bytes | str) -> Kind:
    stored = json.loads(raw)
    return Kind(closed=stored["closed"], types=stored["types"])


def _stored(kind: Kind) -> str:
    return json.dumps({"closed": kind.closed, "types": kind.types})
