"""The request pipeline over real HTTP: the one log line each request writes cannot be forged."""

from __future__ import annotations

import logging

import pytest
from helpers import send


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_line_break_in_a_path_cannot_forge_a_log_line(served, caplog, log_format, monkeypatch):
    monkeypatch.setitem(served.app.config, "LOG_FORMAT", log_format)
    with caplog.at_level(logging.INFO, logger="mypreferences_sandbox.requests"):
        send("GET", f"{served.url}/acme%0AGET%20/forged%20200/Profile/1")

    [line] = [
        record.getMessage() for record in caplog.records if record.name == "mypreferences_sandbox.requests"
    ]
    assert "\n" not in line
    assert "acme\\nGET /forged 200" in line
