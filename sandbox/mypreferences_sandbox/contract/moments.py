"""The moments both contracts speak of: the range a moment may take, and how one is written."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

# How far a test may move the clock: far enough for any scenario, near enough that every date the
# sandbox derives from it (token and rule expiry, windows) stays representable.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as ``Edited`` dates are written."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The range as the documents state it; and, as a pattern on a moment's text (JSON Schema compares
# no dates), the years of it that no time zone offset takes outside it: 1971 to 8998.
RANGE = f"{timestamp(EARLIEST)} to {timestamp(LATEST)} (UTC)"
SAFE_YEARS = "^(197[1-9]|19[89][0-9]|[2-7][0-9]{3}|8[0-8][0-9]{2}|89[0-8][0-9]|899[0-8])-"


def within_range(moment: datetime) -> datetime:
    """``moment``, if between 1970 and 9000; ValueError otherwise."""
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{timestamp(moment)} is outside the clock's range, 1970 to 9000.")
    return moment


# Eastern time, as the vendor's pages say it uses when a consent's date is left out ("current
# Eastern Time ... converted to UTC"); that a date given without a zone is Eastern time too is the
# sandbox's inference from it (docs/fidelity.md). With its daylight saving: the IANA zone.
EASTERN = ZoneInfo("America/New_York")


def zone_name(zone: tzinfo) -> str:
    """A zone as the documents name it."""
    return "UTC" if zone is UTC else f"Eastern time ({zone})" if zone is EASTERN else str(zone)
