"""One log line per request: method, path, status, duration, clientId and the fault fired, as text or JSON."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, current_app, request

from .journal import elapsed_ms, notes

FORMATS = ("text", "json")
log = logging.getLogger("sandbox.requests")


def _line(response: Response) -> Response:
    decided = notes()
    fault = decided.get("fault", {}).get("id")
    fields = {
        "method": request.method,
        "path": request.path,
        "status": None if decided.get("dropped") else response.status_code,
        "durationMs": elapsed_ms(),
        "clientId": (request.view_args or {}).get("client_id"),
        "fault": fault,
    }
    if current_app.config["LOG_FORMAT"] == "json":
        log.info(json.dumps(fields))
    else:
        log.info(
            "%s %s %s %.1fms client=%s fault=%s",
            fields["method"], fields["path"], fields["status"] or "-", fields["durationMs"],
            fields["clientId"] or "-", fault or "-",
        )  # fmt: skip
    return response


def init_app(app: Flask) -> None:
    """Log every request ``app`` answers (register before the journal, whose timing it reads,
    and the hooks whose decisions it reports)."""
    if app.config["LOG_FORMAT"] not in FORMATS:
        raise ValueError(f"SANDBOX_LOG_FORMAT must be text or json, not {app.config['LOG_FORMAT']!r}")
    app.after_request(_line)
