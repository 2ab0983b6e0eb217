"""The pytest plugin: a sandbox for the test session, and a handle per test bound to a clientId of its own.

Registered through the ``pytest11`` entry point when the package is installed (never add a
``pytest_plugins`` line for it: pytest would abort with "Plugin already registered").

- ``sandbox_server`` (session): one in-process sandbox on 127.0.0.1, on a free port, in a
  background thread, shut down at the end of the session, failures or not; or, with
  ``--sandbox-url URL`` (or ``SANDBOX_URL``), a sandbox already running elsewhere (a container).
- ``sandbox`` (function): a ``SandboxHandle`` for one test, bound to a fresh clientId, so that
  tests never see each other's profiles, faults or journal entries, under pytest-xdist and
  against a shared external sandbox alike. The test's clientId is reset afterwards.
- ``sandbox_config`` (session): the settings of the in-process sandbox; override it in a
  conftest.py to change them (``{"MAX_SEARCH_RESULTS": 5, "AUTH_MODE": "strict", ...}``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from .app import create_app
from .control_client import ControlClient

# A well-formed header for the default (lenient) authentication; its UserId is "pytest".
LENIENT_AUTHORIZATION = "PNAUTHINFO3-HMAC-SHA256 Credential=pytest/2026-01-01T00:00:00 Signature=cHl0ZXN0"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sandbox-url",
        default=os.environ.get("SANDBOX_URL"),
        help="run against the sandbox at this URL (e.g. a container) instead of an in-process one "
        "(also SANDBOX_URL)",
    )


class SandboxServer:
    """A running sandbox: its URL and its control plane."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.control = ControlClient(self.url, token=token)


class InProcessServer(SandboxServer):
    """A sandbox app served by werkzeug on 127.0.0.1, on a free port, in a daemon thread.

    ``make_server`` binds before it returns, so the server is ready as soon as it exists."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.app = create_app(config)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.port = self._server.port
        # A short poll interval makes shutdown (at the end of the session) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )
        self._thread.start()
        super().__init__(f"http://127.0.0.1:{self._server.port}", config.get("CONTROL_TOKEN"))

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class SandboxHandle:
    """One test's view of the sandbox: its URLs, its clientId, and the control plane scoped to it."""

    def __init__(self, server: SandboxServer, client_id: str) -> None:
        self.server = server
        self.control = server.control
        self.client_id = client_id
        self.url = server.url
        self.prefixed_url = f"{server.url}/Profiles"
        self.profile_url = f"{server.url}/{client_id}/Profile"
        self.headers = {"Authorization": LENIENT_AUTHORIZATION}

    def add_fault(self, rule: dict | None = None, **fields: Any) -> dict:
        """Add a fault rule scoped to this test's clientId (its ``match`` may narrow it further)."""
        spec = {**(rule or {}), **fields}
        spec["match"] = {**spec.get("match", {}), "clientId": self.client_id}
        return self.control.add_fault(spec)

    def faults(self) -> list[dict]:
        """This test's fault rules, with their hits and what remains."""
        return self.control.faults(self.client_id)

    def requests(self, **filters: Any) -> list[dict]:
        """This test's journal entries (filters as ``ControlClient.requests``)."""
        return self.control.requests(client_id=self.client_id, **filters)

    def count(self, **filters: Any) -> int:
        """How many of this test's requests match ``filters``."""
        return self.control.count(client_id=self.client_id, **filters)

    def profiles(self) -> list[dict]:
        """This test's profiles, as stored."""
        return self.control.export_state(self.client_id)["clients"].get(self.client_id, [])

    def seed(self, profiles: list[dict]) -> dict:
        """Replace this test's profiles with ``profiles`` (state-document form)."""
        return self.control.import_state({"clients": {self.client_id: profiles}})

    def reset(self) -> None:
        """Forget this test's profiles, fault rules and journal entries."""
        self.control.reset(client_id=self.client_id)


@pytest.fixture(scope="session")
def sandbox_config() -> dict[str, Any]:
    """Settings of the in-process sandbox (as ``SANDBOX_*`` without the prefix); override to change."""
    return {}


@pytest.fixture(scope="session")
def sandbox_server(request: pytest.FixtureRequest, sandbox_config: dict[str, Any]) -> Iterator[SandboxServer]:
    """The session's sandbox: in-process, or the one at ``--sandbox-url``."""
    external = request.config.getoption("sandbox_url")
    if external:
        yield SandboxServer(external, sandbox_config.get("CONTROL_TOKEN"))
        return
    server = InProcessServer(sandbox_config)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxHandle]:
    """A handle for this test, bound to a clientId no other test uses; reset afterwards."""
    handle = SandboxHandle(sandbox_server, f"pytest-{uuid.uuid4().hex[:16]}")
    try:
        yield handle
    finally:
        handle.reset()
