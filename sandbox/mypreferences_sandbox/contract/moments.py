"""The moments both contracts speak of: the range a moment may take, and how one is written."""

from __future__ import annotations

from datetime import UTC, datetime

# How far a test may move the clock: far enough for any scenario, near enough that every date the
# sandbox derives from it (token and rule expiry, windows) stays representable.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as ``Edited`` dates are written."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def within_range(moment: datetime) -> datetime:
    """``moment``, if between 1970 and 9000; ValueError otherwise."""
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{timestamp(moment)} is outside the clock's range, 1970 to 9000.")
    return moment
