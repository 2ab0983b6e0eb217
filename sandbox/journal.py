"""The bounded request journal: what each vendor request was, and what the sandbox decided.

Views and handlers ``note`` their decisions (the ProfileId written, the validation errors, the
conflict, the fault rule fired) on the request; the journal's hooks record one entry per vendor
request when its response is ready. Control-plane requests are not journaled.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .clock import current_clock, timestamp

CONTROL_PREFIX = "/_sandbox"
# Credentials never reach the journal; the scheme is kept, so a test can see which was used.
SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")


def note(**facts: Any) -> None:
    """Record what the sandbox decided about the current request (for its journal entry)."""
    g.setdefault("journal_notes", {}).update(facts)


def notes() -> dict:
    """What has been noted about the current request so far."""
    return g.get("journal_notes", {})


def is_control(path: str) -> bool:
    """Whether ``path`` belongs to the control plane (never journaled, never faulted)."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


class Journal:
    """The newest vendor requests, at most ``size`` of them (the oldest are dropped first)."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict] = deque(maxlen=size)
        self._next_id = 1
        # Paths whose request bodies hold secrets (the OAuth token request): never kept.
        self.secret_paths: set[str] = set()

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

    def clear(self, client_id: str | None = None) -> None:
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
) -> Callable[[dict], bool]:
    """A filter over entries: each given criterion must hold (``path`` is a glob)."""
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
    return lambda entry: all(check(entry) for check in checks)


def _headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers = {}
    for name, value in items:
        if name.lower() in SECRET_HEADERS:
            value = value.split(" ", 1)[0] + " [redacted]" if " " in value else "[redacted]"
        headers[name] = value
    return headers


def _start() -> None:
    # Every request is timed (the request log reads it too); only vendor requests are journaled.
    g.request_started = time.perf_counter()


def elapsed_ms() -> float:
    """Milliseconds since the current request started."""
    return round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 3)


def _body() -> str:
    """The request body as the journal keeps it: read only now, after authentication and the
    view (which read it through the same cache), and never for a path that carries secrets."""
    if request.path in current_journal().secret_paths:
        return "[redacted]"
    try:
        return request.get_data(cache=True).decode("utf-8", "replace")
    except RequestEntityTooLarge:
        return "[larger than SANDBOX_MAX_CONTENT_LENGTH]"


def _record(response: Response) -> Response:
    if is_control(request.path):
        return response
    limit = current_app.config["MAX_JOURNAL_BODY"]
    body = _body()
    decided = notes()
    moment = current_clock().now()
    current_journal().record(
        {
            "moment": moment,
            "time": timestamp(moment),
            "method": request.method,
            "path": request.path,
            "clientId": (request.view_args or {}).get("client_id"),
            "query": request.args.to_dict(flat=False),
            "headers": _headers(request.headers.items()),
            "body": body[:limit],
            "bodyTruncated": len(body) > limit,
            # A connection fault cut the exchange: the client saw no status at all.
            "status": None if decided.get("dropped") else response.status_code,
            "durationMs": elapsed_ms(),
            **{key: value for key, value in decided.items() if key != "dropped"},
        }
    )
    return response


def init_app(app: Flask) -> None:
    """Give ``app`` a journal that records every vendor request."""
    app.extensions["sandbox.journal"] = Journal(app.config["MAX_JOURNAL_ENTRIES"])
    app.before_request(_start)
    app.after_request(_record)


def current_journal() -> Journal:
    """The journal of the application handling the current request."""
    return current_app.extensions["sandbox.journal"]
