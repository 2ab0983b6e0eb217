"""The sandbox's time source: real UTC time, or a time a test has set, advanced and released."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app


class Clock:
    """Wall-clock time in UTC, unless frozen at a set time (which moves only when advanced)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        with self._lock:
            return self._frozen or datetime.now(UTC)

    def set(self, moment: datetime) -> None:
        """Freeze the clock at ``moment`` (a zone-less time is taken as UTC)."""
        with self._lock:
            self._frozen = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)

    def advance(self, by: timedelta) -> None:
        """Move the clock by ``by``; a running clock is frozen at its current time first."""
        with self._lock:
            self._frozen = (self._frozen or datetime.now(UTC)) + by

    def release(self) -> None:
        """Let the clock follow real time again."""
        with self._lock:
            self._frozen = None

    @property
    def frozen(self) -> bool:
        """Whether the clock was set (or advanced) and has not been released."""
        with self._lock:
            return self._frozen is not None


def init_app(app: Flask) -> None:
    """Give ``app`` its clock."""
    app.extensions["sandbox.clock"] = Clock()


def current_clock() -> Clock:
    """The clock of the application handling the current request."""
    return current_app.extensions["sandbox.clock"]
