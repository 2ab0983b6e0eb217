"""The sandbox's time source, reached through ``current_app.extensions`` so that it can be steered."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, current_app


class Clock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)


def init_app(app: Flask) -> None:
    """Give ``app`` its clock."""
    app.extensions["sandbox.clock"] = Clock()


def current_clock() -> Clock:
    """The clock of the application handling the current request."""
    return current_app.extensions["sandbox.clock"]
