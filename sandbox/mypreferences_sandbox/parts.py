"""The sandbox's stateful parts, held together so that a reset reaches every one of them."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, Protocol

from flask import current_app

from .domain.accounts import Accounts, AccountsBase
from .domain.auth import Authority, load_directory
from .domain.clock import Clock, ClockBase
from .domain.documents import StateDocuments
from .domain.faults import FaultRegistry, FaultRegistryBase
from .domain.history import History, HistoryBase
from .domain.journal import Journal, JournalBase
from .domain.service import ProfileService
from .domain.store import MemoryStore, ProfileStore

EXTENSION = "sandbox"
# Where the command line's worker leaves what to do after an import (freeze it out of the garbage
# collector's reach); the pytest fixture's app, which shares its test process, has nothing there.
AFTER_IMPORT = "sandbox.after_import"


class Resettable(Protocol):
    """A part that holds state: a reset forgets all of it, or what belongs to one clientId."""

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget everything (taking ``seed`` where the part draws random choices), or ``client_id``'s."""


@dataclass(frozen=True)
class Parts:
    """Every stateful part of one sandbox. Each field is reset by ``reset``, so a part added here
    cannot be forgotten by it; the profile service, which holds no state, is built on the store."""

    clock: ClockBase
    accounts: AccountsBase
    store: ProfileStore
    faults: FaultRegistryBase
    journal: JournalBase
    history: HistoryBase
    authority: Authority

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Parts:
        """The parts, empty, as the settings say (ValueError, one line, for unusable settings): in
        this process, or in the Redis ``SANDBOX_STORE`` names, shared with every process using it."""
        authority = functools.partial(
            Authority,
            config["AUTH_MODE"],
            load_directory(config["AUTH_FILE"]),
            window=timedelta(seconds=config["AUTH_WINDOW_SECONDS"]),
            token_lifetime=timedelta(seconds=config["AUTH_TOKEN_SECONDS"]),
            default_user=config["DEFAULT_USER"],
            shared_secret=config["AUTH_SECRET"],
        )
        accounts, history = config["ACCOUNTS"], config["MAX_HISTORY_ENTRIES"]
        faults = (config["SEED"], config["MAX_FINISHED_FAULTS"], config["MAX_FAULT_RULES"])
        journal = (config["MAX_JOURNAL_ENTRIES"], config["MAX_JOURNAL_BYTES"])
        if config["STORE"] == "memory":
            return cls(
                clock=Clock(),
                accounts=Accounts(accounts),
                store=MemoryStore(),
                faults=FaultRegistry(*faults),
                journal=Journal(*journal),
                history=History(history),
                authority=authority(),
            )
        # Imported here, and only here: see shared's docstring.
        from .redis import faults as redis_faults
        from .redis import parts as redis_parts
        from .redis import shared
        from .redis import store as redis_store

        place = shared.Shared(
            shared.connect(config["STORE"], config["STORE_TIMEOUT_MS"] / 1000), config["STORE_NAMESPACE"]
        )
        return cls(
            clock=redis_parts.RedisClock(place),
            accounts=redis_parts.RedisAccounts(place, accounts),
            store=redis_store.RedisStore(place),
            faults=redis_faults.RedisFaultRegistry(place, *faults),
            journal=redis_parts.RedisJournal(place, *journal),
            history=redis_parts.RedisHistory(place, history),
            authority=authority(tokens=redis_parts.RedisTokens(place)),
        )

    @cached_property
    def service(self) -> ProfileService:
        """The profile service over this sandbox's store."""
        return ProfileService(self.store, self.accounts, self.history)

    @cached_property
    def documents(self) -> StateDocuments:
        """State documents (export, import, the seed file) over this sandbox's profiles and accounts."""
        return StateDocuments(self.service, self.accounts)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Reset every part: everything, or only ``client_id``'s data (``seed``: a full reset's)."""
        for part in dataclasses.fields(self):
            resettable: Resettable = getattr(self, part.name)
            resettable.reset(client_id, seed=seed)


def store_errors(config: Mapping[str, Any]) -> tuple[type[Exception], ...]:
    """The errors the store may raise: Redis's, for a Redis store; none in memory."""
    if config["STORE"] == "memory":
        return ()
    import redis  # only now: see shared's docstring

    return (redis.RedisError,)


def unreachable(error: Exception) -> bool:
    """Whether a store's error means that it cannot be reached or written now (Redis away, or full)."""
    from .redis.shared import unreachable  # only a Redis store raises one: see shared's docstring

    return unreachable(error)


def current() -> Parts:
    """The parts of the application handling the current request."""
    return current_app.extensions[EXTENSION]
