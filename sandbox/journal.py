"""The bounded request journal: what each vendor request was, and what the sandbox decided.

The pipeline builds one entry per vendor request from its request record; this module keeps the
newest of them, filters them, and says what of a request must never be kept (credentials).
Control-plane requests are not journaled.
"""

from __future__ import annotations

import fnmatch
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime

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


class Journal:
    """The newest vendor requests, at most ``size`` of them (the oldest are dropped first)."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict] = deque(maxlen=size)
        self._next_id = 1

    def record(self, entry: dict) -> None:
        """Add ``entry``, numbering it."""
        with self._lock:
            self._entries.append({"id": self._next_id, **entry})
            self._next_id += 1

    def entries(self, matches: Callable[[dict], bool] = lambda entry: True) -> list[dict]:
        """The entries ``matches`` accepts, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._entries if matches(entry)]

    def count(self, matches: Callable[[dict], bool] = lambda entry: True) -> int:
        """How many entries ``matches`` accepts."""
        with self._lock:
            return sum(1 for entry in self._entries if matches(entry))

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Forget every entry, or only those of ``client_id``."""
        with self._lock:
            if client_id is None:
                self._entries.clear()
            else:
                kept = [entry for entry in self._entries if entry["clientId"] != client_id]
                self._entries = deque(kept, maxlen=self._entries.maxlen)


def matcher(
    client_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    warning: str | None = None,
) -> Callable[[dict], bool]:
    """A filter over entries: each given criterion must hold (``path`` and ``warning`` are globs;
    ``warning`` holds when any of the entry's warnings matches it, so ``*``: drew any warning)."""
    checks: list[Callable[[dict], bool]] = []
    if client_id is not None:
        checks.append(lambda e: e["clientId"] == client_id)
    if method is not None:
        checks.append(lambda e: e["method"] == method.upper())
    if path is not None:
        checks.append(lambda e: fnmatch.fnmatchcase(e["path"], path))
    if status is not None:
        checks.append(lambda e: e["status"] == status)
    if since is not None:
        checks.append(lambda e: e["moment"] >= since)
    if until is not None:
        checks.append(lambda e: e["moment"] <= until)
    if warning is not None:
        # An entry that drew no warning has no "warnings" key at all.
        checks.append(lambda e: any(fnmatch.fnmatchcase(line, warning) for line in e.get("warnings", ())))
    return lambda entry: all(check(entry) for check in checks)
