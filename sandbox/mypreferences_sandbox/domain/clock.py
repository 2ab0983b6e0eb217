"""The sandbox's time source: real UTC time, or a time a test has set, advanced and released."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..contract.moments import within_range


class ClockBase(ABC):
    """Wall-clock time in UTC, unless frozen at a set time (moved only when advanced), kept by a subclass."""

    @abstractmethod
    def _frozen_at(self) -> datetime | None:
        """The time the clock is frozen at, or None while it runs."""

    @abstractmethod
    def _freeze(self, moment: datetime | None) -> None:
        """Freeze the clock at ``moment`` (None: let it run)."""

    @abstractmethod
    def _move(self, move: Callable[[datetime | None], datetime]) -> None:
        """Freeze the clock, in one step, at what ``move`` makes of its frozen time (None: running)."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return _showing(self._frozen_at())

    def set(self, moment: datetime) -> None:
        """Freeze the clock at ``moment`` (a zone-less time is taken as UTC); ValueError if out of range."""
        try:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            raise ValueError("The time is outside the clock's range, 1970 to 9000.") from None
        self._freeze(within_range(moment))

    def advance(self, by: timedelta) -> None:
        """Move the clock by ``by``; a running clock is frozen at its current time first."""

        def move(frozen: datetime | None) -> datetime:
            try:
                return within_range(_showing(frozen) + by)
            except OverflowError:
                raise ValueError("The clock would leave its range, 1970 to 9000.") from None

        self._move(move)

    def release(self) -> None:
        """Let the clock follow real time again."""
        self._freeze(None)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """A full reset releases the clock; the clock is server-wide, so a client's reset leaves it."""
        if client_id is None:
            self.release()

    @property
    def frozen(self) -> bool:
        """Whether the clock was set (or advanced) and has not been released."""
        return self._frozen_at() is not None


class Clock(ClockBase):
    """The sandbox clock of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None

    def _frozen_at(self) -> datetime | None:
        with self._lock:
            return self._frozen

    def _freeze(self, moment: datetime | None) -> None:
        with self._lock:
            self._frozen = moment

    def _move(self, move: Callable[[datetime | None], datetime]) -> None:
        with self._lock:
            self._frozen = move(self._frozen)


def _showing(frozen: datetime | None) -> datetime:
    """The time a clock frozen at ``frozen`` (None: running) shows."""
    return datetime.now(UTC) if frozen is None else frozen
