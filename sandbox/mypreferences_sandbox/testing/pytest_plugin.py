"""The pytest plugin: a sandbox for the test session, and a handle per test bound to a clientId of its own.

Registered through the ``pytest11`` entry point when the package is installed (never add a
``pytest_plugins`` line for it: pytest would abort with "Plugin already registered").

- ``sandbox_server`` (session): one in-process sandbox on 127.0.0.1, on a free port, in a
  background thread, shut down at the end of the session, failures or not; or, with
  ``--sandbox-url URL`` (or ``SANDBOX_URL``), a sandbox already running elsewhere (a container),
  waited for up to ``--sandbox-wait`` seconds, its control plane called with ``--sandbox-token``.
- ``sandbox`` (function): a ``SandboxHandle`` for one test, bound to a fresh clientId, so that
  tests never see each other's profiles, faults or journal entries, under pytest-xdist and
  against a shared external sandbox alike. The test's clientId is reset afterwards.
- ``sandbox_config`` (session): the settings of the in-process sandbox; override it in a
  conftest.py to change them (``{"MAX_SEARCH_RESULTS": 5, "DEFAULT_LOCALE": "fr_FR", ...}``).

Warnings can be refused: with ``--sandbox-fail-on-warning`` (or ``SANDBOX_FAIL_ON_WARNING=1``, or
``"FAIL_ON_WARNING": True`` in ``sandbox_config``), or per test with the ``sandbox_fail_on_warning``
marker, a test whose requests drew an ``X-Sandbox-Warning`` fails, naming them; the
``sandbox_allow_warnings`` marker exempts a test.

The in-process sandbox logs nothing into a test's captured log but warnings and errors, unless
``--sandbox-log`` asks for its line per request.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Unpack
from urllib.parse import urlsplit

import pytest
from flask import current_app, has_app_context
from werkzeug.serving import WSGIRequestHandler, make_server

from ..app import create_app
from ..domain.auth import pnauthinfo3_header
from ..http.pipeline import log as request_log
from ..settings import unknown_variables
from .control_client import (
    Clock,
    ControlClient,
    EntryFilters,
    FaultReport,
    FaultRule,
    ImportReport,
    JournalEntry,
)

# The handle's PNAUTHINFO3 UserId. Its secret: the in-process sandbox's SANDBOX_AUTH_SECRET (unless
# sandbox_config gives one), so that lenient mode verifies the handle's signatures for any clientId;
# an external sandbox's, from the same variable; else a secret nobody verifies (a warning each).
USER_ID = "pytest"
SHARED_SECRET = "pytest-sandbox"
UNKNOWN_SECRET = "pytest"

# The plugin's own key in sandbox_config: never passed on to the sandbox app.
FAIL_ON_WARNING = "FAIL_ON_WARNING"
FAIL_MARKER = "sandbox_fail_on_warning"
ALLOW_MARKER = "sandbox_allow_warnings"
FAIL_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}
# --sandbox-fail-on-warning or SANDBOX_FAIL_ON_WARNING, read once for the session.
FAIL_ALL = pytest.StashKey[bool]()
# --sandbox-wait or SANDBOX_WAIT, in seconds.
WAIT = pytest.StashKey[float]()

# While waiting for an external sandbox: how often its health is asked, and the least time one try
# may take (to connect at all), in seconds.
POLL_INTERVAL = 0.1
LEAST_TRY = 1.0
# Marks the app of an in-process server whose request lines are dropped (its app.extensions key).
QUIET = "sandbox.pytest_quiet"


class SandboxConfigWarning(UserWarning):
    """A setting of the in-process sandbox that is likely a mistake (a misspelt SANDBOX_* variable)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "MyPreferences sandbox")
    group.addoption(
        "--sandbox-url",
        metavar="URL",
        default=os.environ.get("SANDBOX_URL"),
        help="run against the sandbox at this URL (e.g. a container) instead of an in-process one "
        "(also SANDBOX_URL)",
    )
    group.addoption(
        "--sandbox-token",
        metavar="TOKEN",
        default=os.environ.get("SANDBOX_CONTROL_TOKEN"),
        help="bearer token of the sandbox's control plane: sent to the sandbox at --sandbox-url, and "
        "locking the in-process one (also SANDBOX_CONTROL_TOKEN)",
    )
    group.addoption(
        "--sandbox-wait",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the sandbox at --sandbox-url to answer its health check before "
        "ending the session (also SANDBOX_WAIT; default 30)",
    )
    group.addoption(
        "--sandbox-log",
        action="store_true",
        help="log the in-process sandbox's line per request (logger mypreferences_sandbox.requests, INFO) "
        "into the tests' captured logs",
    )
    group.addoption(
        "--sandbox-fail-on-warning",
        action="store_true",
        help="fail a test whose requests drew an X-Sandbox-Warning (also SANDBOX_FAIL_ON_WARNING=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; read whether every test refuses warnings and how long to wait for an
    external sandbox (a usage error if unreadable)."""
    config.addinivalue_line(
        "markers", f"{FAIL_MARKER}: fail the test if its sandbox requests drew an X-Sandbox-Warning"
    )
    config.addinivalue_line(
        "markers", f"{ALLOW_MARKER}: let the test pass whatever warnings its sandbox requests drew"
    )
    flag = os.environ.get("SANDBOX_FAIL_ON_WARNING", "").strip().lower()
    if flag not in FAIL_FLAGS:
        raise pytest.UsageError(f"SANDBOX_FAIL_ON_WARNING must be 1, 0, true or false, not {flag!r}")
    config.stash[FAIL_ALL] = config.getoption("sandbox_fail_on_warning") or FAIL_FLAGS[flag]
    url = config.getoption("sandbox_url")
    # Refused now: waited for, such a URL would fail every try, and only after the whole wait.
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        raise pytest.UsageError(f"--sandbox-url {url}: not an http:// or https:// URL")
    wait = config.getoption("sandbox_wait")
    if wait is None:
        text = os.environ.get("SANDBOX_WAIT", "30")
        try:
            wait = float(text)
        except ValueError:
            raise pytest.UsageError(f"SANDBOX_WAIT must be a number of seconds, not {text!r}") from None
    if not wait >= 0:  # NaN too
        raise pytest.UsageError("--sandbox-wait (SANDBOX_WAIT) must be 0 or more seconds")
    config.stash[WAIT] = wait


class SandboxServer:
    """A running sandbox: its URL, its control plane, and the secret its lenient mode verifies
    signatures with (``SANDBOX_AUTH_SECRET``; None: none, signatures draw a warning)."""

    def __init__(self, url: str, token: str | None = None, auth_secret: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.control = ControlClient(self.url, token=token)
        self.auth_secret = auth_secret


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler without its access line: the sandbox writes its own, uncoloured."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing: the app's pipeline logs the request (mypreferences_sandbox.requests)."""


class QuietApps(logging.Filter):
    """Drops the request lines logged while serving a request of a quiet app; keeps warnings and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is kept."""
        quiet = has_app_context() and current_app.extensions.get(QUIET, False)
        return record.levelno >= logging.WARNING or not quiet


QUIET_APPS = QuietApps()


class InProcessServer(SandboxServer):
    """A sandbox app served by werkzeug on 127.0.0.1, on a free port, in a daemon thread.

    ``make_server`` binds before it returns, so the server is ready as soon as it exists. A quiet
    one logs no line per request, only warnings and errors."""

    def __init__(self, config: dict[str, Any], *, quiet: bool = False) -> None:
        self.app = create_app(config)
        if quiet:
            self.app.extensions[QUIET] = True
            request_log.addFilter(QUIET_APPS)  # once: a logger keeps one of each filter
        self._server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=QuietRequestHandler
        )
        self.port = self._server.port
        # A short poll interval makes shutdown (at the end of the session) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )
        self._thread.start()
        # The app's own settings: SANDBOX_* variables count, as well as ``config``.
        super().__init__(
            f"http://127.0.0.1:{self._server.port}",
            self.app.config["CONTROL_TOKEN"],
            self.app.config["AUTH_SECRET"],
        )

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
        self._moved_clock = False

    @property
    def headers(self) -> dict[str, str]:
        """A fresh ``Authorization``, signed now (real time), for a vendor request of this test."""
        return {"Authorization": self.authorization()}

    def authorization(self, moment: datetime | None = None) -> str:
        """A PNAUTHINFO3 ``Authorization`` value signed at ``moment`` (default: now, real time): a
        test that froze the sandbox clock signs at the sandbox's time."""
        return pnauthinfo3_header(self.client_id, USER_ID, self.server.auth_secret or UNKNOWN_SECRET, moment)

    def add_fault(self, rule: FaultRule | None = None, **fields: Unpack[FaultRule]) -> FaultReport:
        """Add a fault rule scoped to this test's clientId (its ``match`` may narrow it further)."""
        spec: FaultRule = {**(rule or FaultRule()), **fields}
        spec["match"] = {**spec.get("match", {}), "clientId": self.client_id}
        return self.control.add_fault(spec)

    def fault(self, rule_id: str) -> FaultReport:
        """One fault rule, with its hits and what remains."""
        return self.control.fault(rule_id)

    def faults(self) -> list[FaultReport]:
        """This test's fault rules, with their hits and what remains."""
        return self.control.faults(self.client_id)

    def requests(self, *, limit: int | None = None, **filters: Unpack[EntryFilters]) -> list[JournalEntry]:
        """This test's journal entries matching ``filters``, oldest first; the newest ``limit``."""
        return self.control.requests(client_id=self.client_id, limit=limit, **filters)

    def count(self, **filters: Unpack[EntryFilters]) -> int:
        """How many of this test's requests match ``filters``."""
        return self.control.count(client_id=self.client_id, **filters)

    def profiles(self) -> list[dict[str, Any]]:
        """This test's profiles, as stored."""
        return self.control.export_state(self.client_id)["clients"].get(self.client_id, [])

    def seed(self, profiles: list[dict[str, Any]]) -> ImportReport:
        """Replace this test's profiles with ``profiles`` (state-document form)."""
        return self.control.import_state({"clients": {self.client_id: profiles}})

    def reset(self) -> None:
        """Forget this test's profiles, fault rules and journal entries."""
        self.control.reset(client_id=self.client_id)

    def clock(self) -> Clock:
        """The sandbox clock: ``{"now": ..., "frozen": ...}``."""
        return self.control.clock()

    def set_clock(self, moment: datetime | str) -> Clock:
        """Freeze the sandbox clock (server-wide) at ``moment``, until released or the test ends."""
        self._moved_clock = True
        return self.control.set_clock(moment)

    def advance_clock(self, seconds: float) -> Clock:
        """Move the sandbox clock (server-wide) forward, frozen, until released or the test ends."""
        self._moved_clock = True
        return self.control.advance_clock(seconds)

    def release_clock(self) -> Clock:
        """Let the sandbox clock follow real time again."""
        self._moved_clock = False
        return self.control.release_clock()

    def _finish(self) -> None:
        """After the test: forget its data, and release a clock it left moved."""
        if self._moved_clock:
            self.release_clock()
        self.reset()


@pytest.fixture(scope="session")
def sandbox_config() -> dict[str, Any]:
    """Settings of the in-process sandbox, by their SANDBOX_* names without the prefix
    (``{"MAX_SEARCH_RESULTS": 5}``): override this session fixture in a conftest.py to change them."""
    return {}


@pytest.fixture(scope="session")
def sandbox_server(request: pytest.FixtureRequest, sandbox_config: dict[str, Any]) -> Iterator[SandboxServer]:
    """The session's sandbox (``url``, ``control``): in-process on a free port, or the one at
    --sandbox-url, waited for up to --sandbox-wait seconds; its control plane uses --sandbox-token."""
    config = request.config
    # sandbox_config's CONTROL_TOKEN still counts, as before the option existed.
    token = config.getoption("sandbox_token") or sandbox_config.get("CONTROL_TOKEN")
    external = config.getoption("sandbox_url")
    if external:
        server = SandboxServer(external, token, os.environ.get("SANDBOX_AUTH_SECRET"))
        _wait_until_healthy(request.session, server, config.stash[WAIT])
        yield server
        return
    # The app reads every SANDBOX_* variable, so a misspelt one would leave its setting at its
    # default without a word; the command line says so on stderr, the plugin in the warnings summary.
    for line in unknown_variables(os.environ):
        warnings.warn(SandboxConfigWarning(line), stacklevel=1)
    # A copy without the plugin's own key: the `sandbox` fixture still reads it from the original.
    # The handle signs with a secret the in-process sandbox shares, so its signatures are verified.
    settings = {"AUTH_SECRET": SHARED_SECRET}
    settings |= {key: value for key, value in sandbox_config.items() if key != FAIL_ON_WARNING}
    if token:
        settings["CONTROL_TOKEN"] = token
    logged = config.getoption("sandbox_log")
    level = request_log.level
    if logged:
        # Shown whatever the root logger's level (WARNING unless --log-level says otherwise).
        request_log.setLevel(logging.INFO)
    server = InProcessServer(settings, quiet=not logged)
    try:
        yield server
    finally:
        server.stop()
        request_log.setLevel(level)


def _wait_until_healthy(session: pytest.Session, server: SandboxServer, seconds: float) -> None:
    """Return once the sandbox's health answers 200; after ``seconds``, end the session in one line."""
    deadline = time.monotonic() + seconds
    while True:
        # A try waits at most until the deadline, yet long enough to connect at all.
        timeout = max(deadline - time.monotonic(), LEAST_TRY)
        try:
            # Asked by hand, not through ControlClient: an error's status must survive a body that is
            # no JSON (another server's 404 page), which the client would only fail to decode.
            with urllib.request.urlopen(f"{server.url}/_sandbox/health", timeout=timeout) as answer:
                json.loads(answer.read())
            return
        except urllib.error.HTTPError as error:
            error.close()
            cause = f"it answered {error.code}"
        except urllib.error.URLError as error:
            cause = str(error.reason)
        except (OSError, http.client.HTTPException) as error:
            cause = str(error) or type(error).__name__
        except ValueError:  # a 200 whose body is no JSON
            cause = "what answers is no sandbox: its answer is not JSON"
        if time.monotonic() >= deadline:
            message = (
                f"--sandbox-url {server.url}: no sandbox answered GET /_sandbox/health with 200 "
                f"within {seconds:g} s ({cause})"
            )
            # A pytest-xdist worker's exit alone makes its controller fail with an internal error; the
            # worker's shouldstop ends the whole session with that one line.
            if hasattr(session.config, "workerinput"):
                session.shouldstop = message
            pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)
        time.sleep(POLL_INTERVAL)


# The handle of a test that refuses warnings, which pytest_runtest_call checks after the test body.
REFUSING = pytest.StashKey[SandboxHandle]()


@pytest.fixture
def sandbox(
    request: pytest.FixtureRequest, sandbox_server: SandboxServer, sandbox_config: dict[str, Any]
) -> Iterator[SandboxHandle]:
    """A SandboxHandle for this test, bound to a clientId no other test uses: URLs, headers, fault
    rules, journal, profiles and clock; afterwards its data is reset and a clock it moved released."""
    handle = SandboxHandle(sandbox_server, f"pytest-{uuid.uuid4().hex[:16]}")
    if _refuses_warnings(request.node, sandbox_config):
        request.node.stash[REFUSING] = handle
    try:
        yield handle
    finally:
        handle._finish()


def _refuses_warnings(item: pytest.Item, sandbox_config: dict[str, Any]) -> bool:
    """The closest of the two markers decides (a test's own over its class's or module's); without
    one, the option, the environment variable or ``sandbox_config``."""
    for marker in item.iter_markers():
        if marker.name in (FAIL_MARKER, ALLOW_MARKER):
            return marker.name == FAIL_MARKER
    return item.config.stash[FAIL_ALL] or bool(sandbox_config.get(FAIL_ON_WARNING))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test body that passed, fail the test if its requests drew warnings it refuses."""
    # A body that failed raises here, and its own failure stands.
    yield
    handle = item.stash.get(REFUSING, None)
    if handle is None:
        return
    warned = handle.requests(warning="*")
    if warned:
        # Raised in the call phase, this is the test's failure, where a fixture's teardown would
        # have made it an error.
        pytest.fail(_warning_report(warned), pytrace=False)


def _warning_report(warned: list[JournalEntry]) -> str:
    """Each warned request, by method and path, with its warning lines; then how to accept them."""
    lines = ["Requests of this test drew sandbox warnings:"]
    for entry in warned:
        lines.append(f"  {entry['method']} {entry['path']}")
        lines.extend(f"    {warning}" for warning in entry["warnings"])
    lines.append(
        f"(refused by --sandbox-fail-on-warning, SANDBOX_FAIL_ON_WARNING, sandbox_config's "
        f"{FAIL_ON_WARNING} or the {FAIL_MARKER} marker; the {ALLOW_MARKER} marker accepts them)"
    )
    return "\n".join(lines)
