"""A consumer's tests written against the plugin and the client, which ``mypy --strict`` accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from mypreferences_sandbox.testing.control_client import ControlClient, FaultReport, JournalEntry
from mypreferences_sandbox.testing.pytest_plugin import SandboxHandle

MOMENT = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_503_then_a_retry(sandbox: SandboxHandle) -> None:
    rule: FaultReport = sandbox.add_fault(respond={"status": 503, "headers": {"Retry-After": "1"}}, times=1)
    assert rule["remaining"] == 1
    assert sandbox.fault(rule["id"])["hits"] == 0
    assert [report["state"] for report in sandbox.faults()] == ["active"]
    entries: list[JournalEntry] = sandbox.requests(method="POST", status=503, limit=5)
    assert all(entry["status"] == 503 and "fault" in entry for entry in entries)
    assert sandbox.count(path="/*/Profile", warning="*", since=MOMENT, until="2031-01-01T00:00:00Z") == 0
    assert sandbox.profiles() == []
    assert sandbox.seed([{"CustomerName": {"FirstName": "Ann"}}])["imported"][sandbox.client_id] == 1


def test_at_a_fixed_time(sandbox: SandboxHandle) -> None:
    assert sandbox.set_clock(MOMENT)["frozen"]
    assert sandbox.advance_clock(90.5)["now"].startswith("2030-01-01T00:01:30")
    assert not sandbox.release_clock()["frozen"]
    assert sandbox.clock()["now"]


def drive(control: ControlClient) -> None:
    """The client's own calls: a rule as a dict, as keywords, or both."""
    control.add_fault({"respond": {"status": 500}}, times=2, skip=1, probability=0.5, seed=7, ttl=60_000)
    control.add_fault(
        match={"method": "POST", "operation": "create_profile", "headers": {"X-Test-Case": "retry-*"}},
        delay={"lognormal": {"median": 120, "sigma": 0.4}},
        fault={"type": "HANG", "duration": 500},
        when="before",
        expiresAt=MOMENT,
    )
    control.add_fault(delay={"uniform": {"lower": 10, "upper": 50}}, respond={"status": 502, "body": None})
    assert control.count(client_id="acme", method="POST", status=201) == 0
    assert control.requests(client_id="acme", limit=1) == []
    assert control.health()["status"] == "ok"
