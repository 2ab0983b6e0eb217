"""Misspelt and mistyped calls, which ``mypy --strict`` refuses: each ``# error:`` names its error."""

from __future__ import annotations

from mypreferences_sandbox.testing.control_client import ControlClient
from mypreferences_sandbox.testing.pytest_plugin import SandboxHandle


def test_misspelt(sandbox: SandboxHandle, control: ControlClient) -> None:
    sandbox.add_fault(respond={"status": 503}, tims=1)  # error: Unexpected keyword argument "tims"
    control.add_fault(respond={"status": 503}, tims=1)  # error: Unexpected keyword argument "tims"
    control.count(client_id="acme", statuss=201)  # error: Unexpected keyword argument "statuss"
    sandbox.requests(methd="POST")  # error: Unexpected keyword argument "methd"
    sandbox.count(client_id="other")  # error: Unexpected keyword argument "client_id"
    sandbox.add_fault(respond={"status": "503"})  # error: TypedDict item "status" has type "int"
    sandbox.add_fault(fault={"type": "RESET"})  # error: TypedDict item "type" has type "Literal['CONNECTION
    sandbox.add_fault(when="later")  # error: Argument "when"
    assert sandbox.fault("f1")["hit"] == 1  # error: TypedDict "FaultReport" has no key "hit"
    assert sandbox.requests()[0]["stauts"] == 200  # error: TypedDict "JournalEntry" has no key "stauts"
