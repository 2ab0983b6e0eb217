"""Fault rules kept in Redis: one registry for every process of a sandbox, consumed exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.commands.core import Script

from ..contract.moments import EARLIEST
from ..domain.faults import (
    Criteria,
    FaultRegistryBase,
    Firing,
    RequestFacts,
    Rule,
    Tally,
    candidates,
    expiry,
    micros,
    too_many,
    unknown,
)
from ..settings import DEFAULTS
from .shared import Shared

# The registry's keys, server-wide (one hash slot), passed to every script in this order:
#   version   a counter raised by every change to which rules are kept or active, and never
#             deleted: a process's cached view is named by it, and a counter started again could
#             name a later state as an earlier one. It also orders the finished rules, and tells a
#             rule apart from one of the same id after a full reset (its "born").
#   next      the number of the last rule added (ids restart with it at a full reset)
#   seed      the registry's seed, once a full reset has set one
#   rules     a hash of every kept rule's fields, as "<id>:<field>" (FIELDS below)
#   kept      the rules listed, by number (creation order); active and finished partition them:
#   active    the rules that may fire, by number
#   finished  the spent and expired ones, by the version at which they finished
#   expiring  the active rules that expire, as slots (below), all of score 0: ordered by their text
#   expired   the rules finished by expiring, as slots: a clock set back revives them
KEYS = ("version", "next", "seed", "rules", "kept", "active", "finished", "expiring", "expired")
# What a process reads of a rule to hold it; a report adds its counters.
RECORD = ("spec", "number", "seed", "expires", "born")
COUNTERS = ("matched", "hits")

# Shared by the scripts. A slot is "<expiry>:<number>:<id>", the expiry in microseconds since 1970
# on 18 digits and the number on 12, so that slots sort as (expiry, creation order) do; Lua's
# numbers (doubles) would lose microseconds past the year 2255, text loses nothing.
PRELUDE = """
local version, next_number, seed, rules, kept, active, finished, expiring, expired = unpack(KEYS)
local FIELDS = {'spec', 'number', 'born', 'seed', 'expires', 'slot', 'client', 'skip', 'times',
                'matched', 'hits'}

local function get(id, name)
  return redis.call('HGET', rules, id .. ':' .. name)
end

local function drop(id)
  local slot = get(id, 'slot')
  if slot then
    redis.call('ZREM', expiring, slot)
    redis.call('ZREM', expired, slot)
  end
  redis.call('ZREM', kept, id)
  redis.call('ZREM', active, id)
  redis.call('ZREM', finished, id)
  local names = {}
  for i, name in ipairs(FIELDS) do names[i] = id .. ':' .. name end
  redis.call('HDEL', rules, unpack(names))
end

local function finish(id, max_finished)
  redis.call('ZREM', active, id)
  redis.call('ZADD', finished, redis.call('INCR', version), id)
  while redis.call('ZCARD', finished) > max_finished do
    drop(redis.call('ZRANGE', finished, 0, 0)[1])
  end
end

local function slot_id(slot)
  return string.match(slot, '^%d+:%d+:(.+)$')
end

-- The rules whose expiry now has reached leave the active ones, soonest first; those finished by
-- expiring whose expiry it has not (the clock was set back) come back. ';' sorts just after ':',
-- so the slots up to '(<now>;' are those expiring at now or before.
local function settle(now, max_finished)
  local bound = now .. ';'
  for _, slot in ipairs(redis.call('ZRANGEBYLEX', expiring, '-', '(' .. bound)) do
    redis.call('ZREM', expiring, slot)
    redis.call('ZADD', expired, 0, slot)
    finish(slot_id(slot), max_finished)
  end
  for _, slot in ipairs(redis.call('ZRANGEBYLEX', expired, '(' .. bound, '+')) do
    local id = slot_id(slot)
    redis.call('ZREM', expired, slot)
    redis.call('ZREM', finished, id)
    redis.call('ZADD', expiring, 0, slot)
    redis.call('ZADD', active, get(id, 'number'), id)
    redis.call('INCR', version)
  end
end

-- Whether rule id is active, and the one born then, not one of the same id after a full reset.
local function live(id, born)
  return redis.call('ZSCORE', active, id) and get(id, 'born') == born
end

local function hit(id, max_finished)
  local hits = redis.call('HINCRBY', rules, id .. ':hits', 1)
  local times = get(id, 'times')
  if times and hits >= tonumber(times) then
    local slot = get(id, 'slot')
    if slot then redis.call('ZREM', expiring, slot) end
    finish(id, max_finished)
  end
  return hits
end
"""

# ARGV: now, max_finished, max_active, the registry's seed (unless one is kept), spec, expiry ('':
# none), '1' if scoped to a clientId and '0' if not, the clientId, skip, times ('': no limit).
# {1, id, number, born, the registry's seed}; {0, the active count} past the limit.
ADD = (
    PRELUDE
    + """
local now, max_finished = ARGV[1], tonumber(ARGV[2])
settle(now, max_finished)
local count = redis.call('ZCARD', active)
if count >= tonumber(ARGV[3]) then
  return {0, count}
end
local number = redis.call('INCR', next_number)
local id = string.format('f%d', number)
local born = string.format('%d', redis.call('INCR', version))
local registry_seed = redis.call('GET', seed) or ARGV[4]
local fields = {id .. ':spec', ARGV[5], id .. ':number', string.format('%d', number), id .. ':born', born,
                id .. ':seed', registry_seed, id .. ':skip', ARGV[9]}
if ARGV[6] ~= '' then
  local slot = ARGV[6] .. ':' .. string.format('%012d', number) .. ':' .. id
  for _, value in ipairs({id .. ':expires', ARGV[6], id .. ':slot', slot}) do fields[#fields + 1] = value end
  redis.call('ZADD', expiring, 0, slot)
end
if ARGV[7] == '1' then
  fields[#fields + 1] = id .. ':client'
  fields[#fields + 1] = ARGV[8]
end
if ARGV[10] ~= '' then
  fields[#fields + 1] = id .. ':times'
  fields[#fields + 1] = ARGV[10]
end
redis.call('HSET', rules, unpack(fields))
redis.call('ZADD', kept, number, id)
redis.call('ZADD', active, number, id)
settle(now, max_finished)
return {1, id, number, born, registry_seed}
"""
)

# A matching request's turn at a rule. ARGV: now, max_finished, id, born, and the odds: 'fires'
# (no probability, or drawn and passed), 'misses' (drawn and missed), 'undrawn' (drawn only past
# the skip) or 'drawn' (the second turn of an 'undrawn' one, whose draw passed: not counted again
# as matched). The rule's hits when it fires; 0 when it does not (skipped, missed, gone); -1 when
# the odds are to be drawn, then the turn taken again as 'drawn'.
TURN = (
    PRELUDE
    + """
local max_finished, id, odds = tonumber(ARGV[2]), ARGV[3], ARGV[5]
settle(ARGV[1], max_finished)
if not live(id, ARGV[4]) then
  return 0
end
if odds ~= 'drawn' then
  local matched = redis.call('HINCRBY', rules, id .. ':matched', 1)
  if matched <= tonumber(get(id, 'skip')) or odds == 'misses' then
    return 0
  end
  if odds == 'undrawn' then
    return -1
  end
end
return hit(id, max_finished)
"""
)

# What a process holds of the registry. ARGV: now, max_finished. {version, the soonest expiring
# slot, the latest expired slot, the active ids in creation order, their borns}.
SNAPSHOT = (
    PRELUDE
    + """
settle(ARGV[1], tonumber(ARGV[2]))
local ids = redis.call('ZRANGE', active, 0, -1)
local borns = {}
for i, id in ipairs(ids) do borns[i] = get(id, 'born') end
return {redis.call('GET', version) or '0', redis.call('ZRANGE', expiring, 0, 0)[1] or '',
        redis.call('ZRANGE', expired, -1, -1)[1] or '', ids, borns}
"""
)

# ARGV: now, max_finished, 'all', 'client' or 'one', the clientId or id, then the fields to read.
# {id, its fields...} for each rule reported, in creation order.
REPORT = (
    PRELUDE
    + """
settle(ARGV[1], tonumber(ARGV[2]))
local ids = {}
if ARGV[3] == 'one' then
  if redis.call('ZSCORE', kept, ARGV[4]) then ids = {ARGV[4]} end
else
  ids = redis.call('ZRANGE', kept, 0, -1)
end
local out = {}
for _, id in ipairs(ids) do
  if ARGV[3] ~= 'client' or get(id, 'client') == ARGV[4] then
    local names = {}
    for i = 5, #ARGV do names[#names + 1] = id .. ':' .. ARGV[i] end
    local record = redis.call('HMGET', rules, unpack(names))
    table.insert(record, 1, id)
    out[#out + 1] = record
  end
end
return out
"""
)

# ARGV: id. 1, or 0 if no rule has it.
DELETE = (
    PRELUDE
    + """
if not redis.call('ZSCORE', kept, ARGV[1]) then
  return 0
end
drop(ARGV[1])
redis.call('INCR', version)
return 1
"""
)

# ARGV: 'all' and the seed to take ('': keep it), or 'client' and the clientId.
RESET = (
    PRELUDE
    + """
if ARGV[1] == 'all' then
  redis.call('UNLINK', next_number, rules, kept, active, finished, expiring, expired)
  if ARGV[2] ~= '' then redis.call('SET', seed, ARGV[2]) end
else
  for _, id in ipairs(redis.call('ZRANGE', kept, 0, -1)) do
    if get(id, 'client') == ARGV[2] then drop(id) end
  end
end
redis.call('INCR', version)
"""
)


@dataclass(frozen=True)
class _View:
    """The active rules as one process last read them, and when that reading stops holding."""

    version: int
    active: dict[str | None, dict[str, Rule]]  # by match.clientId, each by id in creation order
    born: dict[str, int]  # each active rule's
    since: int | None  # the latest expiry of a rule finished by expiring: before it, that one revives
    until: int | None  # the soonest expiry of an active rule: from it, that one expires

    def holds(self, version: int, now: int) -> bool:
        """Whether the view is the registry's at ``version`` and ``now`` (in microseconds)."""
        return (
            version == self.version
            and (self.since is None or now >= self.since)
            and (self.until is None or now < self.until)
        )


class RedisFaultRegistry(FaultRegistryBase):
    """``FaultRegistry``'s interface and behaviour, its state in Redis: one registry for all processes.

    Every process holding a ``RedisFaultRegistry`` on the same Redis and namespace sees the same rules.
    Every change and every turn at a rule is one Lua script, atomic in Redis: a rule with ``times``
    fires exactly that often however many processes race for it. A request costs one GET of the
    version while no rule matches it: each process keeps the active rules, parsed and compiled,
    until the version changes, and calls a script only for a rule its criteria accept.

    The random draws (probability, delay, noise) are the process's: each process holds its own
    generator of each rule, seeded as in memory, so each process's sequence is deterministic, not
    the interleaving of the processes' requests. For the same reason a rule whose probability passed
    may have been spent by another process in the meantime: that request counts as matched only.
    """

    def __init__(
        self,
        shared: Shared,
        seed: int,
        max_finished: int = DEFAULTS["MAX_FINISHED_FAULTS"],
        max_active: int = DEFAULTS["MAX_FAULT_RULES"],
    ) -> None:
        self._redis = shared.redis
        self._keys = [shared.server_key(f"faults:{name}") for name in KEYS]
        self._version_key, self._seed_key, self._rules_key = self._keys[0], self._keys[2], self._keys[3]
        self._seed = seed
        self.max_finished = max_finished
        self.max_active = max_active
        self._add, self._take, self._snapshot, self._report, self._delete, self._reset = (
            self._redis.register_script(script) for script in (ADD, TURN, SNAPSHOT, REPORT, DELETE, RESET)
        )
        # The rules this process has read, parsed and compiled, by id and born: held while Redis
        # keeps them, so that each rule's generator goes on drawing where it was (a finished rule
        # revived by a clock set back included).
        self._known: dict[tuple[str, int], Rule] = {}
        self._view = _View(-1, {}, {}, None, None)

    @property
    def seed(self) -> int:
        """The seed of the rules to come, unless they name theirs: the last full reset's, if it gave one."""
        kept = self._redis.get(self._seed_key)
        return self._seed if kept is None else int(kept)

    def add(self, spec: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Add a validated rule, its draws seeded as in memory; 409 if ``max_active`` rules are active."""
        criteria = Criteria.of(spec["match"])
        expires = expiry(spec, now)
        client_id = spec["match"].get("clientId")
        outcome = self._call(
            self._add,
            _instant(now), self.max_finished, self.max_active, self._seed, _dumped(spec),
            "" if expires is None else _instant(expires), int(client_id is not None), client_id or "",
            spec["skip"], spec.get("times", ""),
        )  # fmt: skip
        if not outcome[0]:
            raise too_many(outcome[1], self.max_active)
        _, rule_id, number, born, seed = outcome
        rule = Rule.of(rule_id.decode(), number, spec, criteria, int(seed), expires)
        self._known[(rule.id, int(born))] = rule
        return rule.report(Tally(), now)

    def reports(self, now: datetime, client_id: str | None = None) -> list[dict[str, Any]]:
        """Every rule kept (or those scoped to ``client_id``), reported."""
        scope = ("all", "") if client_id is None else ("client", client_id)
        return [
            self._reported(record, now) for record in self._call(self._report, *self._reading(now, *scope))
        ]

    def report(self, rule_id: str, now: datetime) -> dict[str, Any]:
        """One rule, reported; 404 if unknown."""
        records = self._call(self._report, *self._reading(now, "one", rule_id))
        if not records:
            raise unknown(rule_id)
        return self._reported(records[0], now)

    def delete(self, rule_id: str) -> None:
        """Remove one rule; 404 if unknown."""
        if not self._call(self._delete, rule_id):
            raise unknown(rule_id)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Remove every rule (ids restart; ``seed`` seeds the rules to come), or those of ``client_id``."""
        if client_id is None:
            self._call(self._reset, "all", "" if seed is None else seed)
        else:
            self._call(self._reset, "client", client_id)

    def fire(self, facts: RequestFacts, now: datetime, cap_ms: int) -> Firing | None:
        """The first live rule that fires on ``facts``, counted in Redis, drawn by this process; or None."""
        view = self._current(now)
        for rule in candidates(view.active, facts.client_id):
            if rule.accepts(facts) and (hits := self._turn(rule, view.born[rule.id], now)):
                return rule.firing(hits, cap_ms)
        return None

    def _turn(self, rule: Rule, born: int, now: datetime) -> int:
        """A matching request's turn at ``rule``: the rule's hits if it fires, else 0."""
        if "probability" not in rule.spec:
            odds = "fires"
        elif rule.spec["skip"]:
            odds = "undrawn"  # a skipped request draws nothing, in memory either
        else:
            odds = "fires" if rule.passes_odds() else "misses"
        turn = (_instant(now), self.max_finished, rule.id, born)
        hits = int(self._call(self._take, *turn, odds))
        if hits < 0:
            hits = int(self._call(self._take, *turn, "drawn")) if rule.passes_odds() else 0
        return hits

    def _current(self, now: datetime) -> _View:
        """The active rules at ``now``: the view held while version and clock leave it, else read anew."""
        if self._view.holds(int(self._redis.get(self._version_key) or 0), micros(now)):
            return self._view
        version, first, last, ids, borns = self._call(self._snapshot, _instant(now), self.max_finished)
        born = {rule_id.decode(): int(birth) for rule_id, birth in zip(ids, borns, strict=True)}
        missing = [rule_id for rule_id in born if (rule_id, born[rule_id]) not in self._known]
        if missing:
            fields = self._redis.hmget(
                self._rules_key, [f"{rule_id}:{name}" for rule_id in missing for name in RECORD]
            )
            for index, rule_id in enumerate(missing):
                record = fields[index * len(RECORD) : (index + 1) * len(RECORD)]
                if record[0] is not None:  # else deleted since: the version has moved on
                    self._rule(rule_id, record)
        active: dict[str | None, dict[str, Rule]] = {}
        for rule_id in born:
            if (rule := self._known.get((rule_id, born[rule_id]))) is not None:
                active.setdefault(rule.client_id, {})[rule_id] = rule
        # Only once they may outnumber those kept: so a refresh costs the active rules, not all kept.
        if len(self._known) > 2 * (len(born) + self.max_finished) + 64:
            self._forget()
        self._view = _View(int(version), active, born, _slot_expiry(last), _slot_expiry(first))
        return self._view

    def _forget(self) -> None:
        """Let go of the rules Redis no longer keeps (deleted, dropped, or from before a full reset)."""
        held = list(self._known)
        borns = self._redis.hmget(self._rules_key, [f"{rule_id}:born" for rule_id, _ in held])
        for key, born in zip(held, borns, strict=True):
            if born is None or int(born) != key[1]:
                self._known.pop(key, None)

    def _rule(self, rule_id: str, record: list[Any]) -> Rule:
        """Rule ``rule_id`` of its ``RECORD`` fields: the one this process holds, else read now."""
        spec_json, number, seed, expires, born = record
        key = (rule_id, int(born))
        rule = self._known.get(key)
        if rule is None:
            spec = _loaded(spec_json)
            moment = None if expires is None else EARLIEST + timedelta(microseconds=int(expires))
            # setdefault: of two threads reading the rule at once, both draw from one generator.
            rule = self._known.setdefault(
                key, Rule.of(rule_id, int(number), spec, Criteria.of(spec["match"]), int(seed), moment)
            )
        return rule

    def _reading(self, now: datetime, which: str, value: str) -> tuple[str | int, ...]:
        """The arguments of REPORT."""
        return (_instant(now), self.max_finished, which, value, *RECORD, *COUNTERS)

    def _reported(self, record: list[Any], now: datetime) -> dict[str, Any]:
        """A rule reported from its REPORT record."""
        rule_id, *fields = record
        rule = self._rule(rule_id.decode(), fields[: len(RECORD)])
        matched, hits = (int(count or 0) for count in fields[len(RECORD) :])
        return rule.report(Tally(matched, hits), now)

    def _call(self, script: Script, *args: str | int) -> Any:
        """``script`` run on the registry's keys."""
        return script(keys=self._keys, args=args)


def _instant(moment: datetime) -> str:
    """``moment`` as scripts compare it: microseconds since 1970, on 18 digits."""
    return f"{micros(moment):018d}"


def _slot_expiry(slot: bytes) -> int | None:
    """The expiry, in microseconds, of a slot (None for no slot)."""
    return int(slot[:18]) if slot else None


def _dumped(spec: dict[str, Any]) -> str:
    """A validated spec as JSON, its ``expiresAt`` (the one value JSON has not) in ISO 8601."""
    return json.dumps({**spec, "expiresAt": spec["expiresAt"].isoformat()} if "expiresAt" in spec else spec)


def _loaded(text: bytes) -> dict[str, Any]:
    """The spec ``_dumped`` wrote."""
    spec: dict[str, Any] = json.loads(text)
    if "expiresAt" in spec:
        spec["expiresAt"] = datetime.fromisoformat(spec["expiresAt"])
    return spec
