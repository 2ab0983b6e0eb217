"""The bounded request journal: what each vendor request was, and what the sandbox decided.

The pipeline builds one entry per vendor request from its request record, the body's parsed form
included (``wire.formats.parsed_form``: JSON, or XML in a simple form); this module keeps the newest
entries within their bounds, filters them (``matcher``), and says what of a request must never be
kept (credentials) and how much of the rest is (``kept``). Control-plane requests are not journaled.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from ..contract.control_schemas import glob
from .matching import BodyMatcher

# Credentials never reach the journal; the scheme is kept, so a test can see which was used.
SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")
REDACTED = "[redacted]"


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers as the journal keeps them: credentials replaced, their scheme kept."""
    kept = {}
    for name, value in headers:
        if name.lower() in SECRET_HEADERS:
            value = f"{value.split(' ', 1)[0]} {REDACTED}" if " " in value else REDACTED
        kept[name] = value
    return kept


def footprint(entry: dict) -> int:
    """About how many bytes an entry holds: the length of its JSON (a moment counts as its text)."""
    return len(json.dumps(entry, default=str))


def kept(items: Iterable[tuple[str, Any]], limit: int) -> tuple[dict, int]:
    """The first ``limit`` items as a dict, and how many more there were."""
    chosen: dict = {}
    dropped = 0
    for key, value in items:
        if len(chosen) < limit:
            chosen[key] = value
        else:
            dropped += 1
    return chosen, dropped


class JournalBase(ABC):
    """The newest vendor requests, numbered, kept by a subclass within its bounds."""

    @abstractmethod
    def record(self, entry: dict) -> None:
        """Add ``entry``, numbering it, and drop the oldest past either bound."""

    @property
    @abstractmethod
    def held_bytes(self) -> int:
        """About how many bytes the entries hold together."""

    @abstractmethod
    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every entry, or only those of ``client_id``."""

    @abstractmethod
    def _held(self) -> Iterable[dict]:
        """Every entry, oldest first, each a copy."""

    def entries(self, matches: Callable[[dict], bool] = lambda entry: True) -> list[dict]:
        """The entries ``matches`` accepts, oldest first."""
        return [entry for entry in self._held() if matches(entry)]

    def count(self, matches: Callable[[dict], bool] = lambda entry: True) -> int:
        """How many entries ``matches`` accepts."""
        return sum(1 for entry in self._held() if matches(entry))


class Journal(JournalBase):
    """The newest vendor requests of this process: at most ``size`` of them, and at most
    ``max_bytes`` of them together (the oldest are dropped first; the newest one is always kept)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict] = deque()
        self._costs: deque[int] = deque()
        self._bytes = 0
        self._size = size
        self._max_bytes = max_bytes
        self._next_id = 1

    def record(self, entry: dict) -> None:
        """Add ``entry``, numbering it, and drop the oldest past either bound."""
        cost = footprint(entry)
        with self._lock:
            self._entries.append({"id": self._next_id, **entry})
            self._costs.append(cost)
            self._bytes += cost
            self._next_id += 1
            while len(self._entries) > 1 and (
                len(self._entries) > self._size or self._bytes > self._max_bytes
            ):
                self._entries.popleft()
                self._bytes -= self._costs.popleft()

    @property
    def held_bytes(self) -> int:
        """About how many bytes the entries hold together."""
        with self._lock:
            return self._bytes

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every entry, or only those of ``client_id``."""
        with self._lock:
            pairs = [
                (entry, cost)
                for entry, cost in zip(self._entries, self._costs, strict=True)
                if client_id is not None and entry["clientId"] != client_id
            ]
            self._entries = deque(entry for entry, _ in pairs)
            self._costs = deque(cost for _, cost in pairs)
            self._bytes = sum(self._costs)

    def _held(self) -> list[dict]:
        with self._lock:
            return [dict(entry) for entry in self._entries]


def matcher(
    client_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    warning: str | None = None,
    operation: str | None = None,
    body: Sequence[tuple[str, Any]] = (),
) -> Callable[[dict], bool]:
    """A filter over entries: each given criterion must hold (``path`` and ``warning`` are globs;
    ``warning`` holds when any of the entry's warnings matches it, so ``*``: drew any warning;
    ``body`` holds when the entry's parsed body has each value at its JSON Pointer)."""
    # The globs are compiled for this call only: fnmatch's functions would keep each distinct
    # pattern a caller ever sent, up to 32,768 of them (re's own cache keeps at most 512).
    checks: list[Callable[[dict], bool]] = []
    if client_id is not None:
        checks.append(lambda e: e["clientId"] == client_id)
    if method is not None:
        checks.append(lambda e: e["method"] == method.upper())
    if path is not None:
        path_glob = glob(path)
        checks.append(lambda e: path_glob.match(e["path"]) is not None)
    if status is not None:
        checks.append(lambda e: e["status"] == status)
    if since is not None:
        checks.append(lambda e: e["moment"] >= since)
    if until is not None:
        checks.append(lambda e: e["moment"] <= until)
    if warning is not None:
        # An entry that drew no warning has no "warnings" key at all.
        warning_glob = glob(warning)
        checks.append(lambda e: any(warning_glob.match(line) for line in e.get("warnings", ())))
    if operation is not None:
        checks.append(lambda e: e.get("operation") == operation)
    conditions = [BodyMatcher.of(pointer, value) for pointer, value in body]
    if conditions:
        # An entry without a parsed body (or from before entries had one) matches no body filter.
        checks.append(lambda e: all(condition.holds(e.get("bodyJson")) for condition in conditions))
    return lambda entry: all(check(entry) for check in checks)
