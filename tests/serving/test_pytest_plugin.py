"""The pytest plugin, run as a user runs it: inner pytest sessions through pytester."""

from __future__ import annotations

import contextlib
import http.server
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import Launched, minimal_profile, post_json
from mypreferences_sandbox.testing.pytest_plugin import InProcessServer

ROOT = Path(__file__).resolve().parents[2]

CREATE_SAME_ALTERNATE_ID = """
import requests

BODY = {"AlternateIds": [{"AlternateIdType": "crm", "AlternateId": "same-in-both-tests"}]}

def create(sandbox):
    return requests.post(sandbox.profile_url, json=BODY, headers=sandbox.headers, timeout=10)

def test_first(sandbox):
    assert create(sandbox).status_code == 201

def test_second(sandbox):
    assert create(sandbox).status_code == 201
    assert len(sandbox.profiles()) == 1
"""


def test_in_process_servers_of_one_process_each_answer_with_their_own_urls():
    # Their apps share the URL rules' compiled builders (sandbox/mypreferences_sandbox/app.py), not the URLs built.
    servers = [InProcessServer({}), InProcessServer({})]
    try:
        created = [
            post_json(f"{server.url}{root}/acme/Profile", minimal_profile())
            for server in servers
            for root in ("", "/Profiles")
        ]
    finally:
        for server in servers:
            server.stop()

    assert [response.status_code for response in created] == [201] * 4
    assert [response.headers["Location"].rsplit("/", 1)[0] for response in created] == [
        f"{server.url}{root}/acme/Profile" for server in servers for root in ("", "/Profiles")
    ]


def test_tests_are_isolated_by_client_id(pytester):
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)


def test_a_project_with_its_own_sandbox_package_runs_with_the_plugin(pytester):
    """The README's ``python -m pytest`` puts the project's folder first on the path: a package of
    the project named ``sandbox`` (a common name) is the project's, and the plugin still loads."""
    pytester.mkpydir("sandbox").joinpath("settings.py").write_text('NAME = "ours"\n')
    pytester.makepyfile(
        """
        import requests
        from sandbox.settings import NAME

        def test_both_are_there(sandbox):
            assert NAME == "ours"
            created = requests.post(sandbox.profile_url, json={}, headers=sandbox.headers, timeout=10)
            assert created.status_code == 201
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_a_fault_in_one_test_does_not_leak_into_the_next(pytester):
    pytester.makepyfile(
        """
        import requests

        def create(sandbox):
            return requests.post(sandbox.profile_url, json={}, headers=sandbox.headers, timeout=10)

        def test_with_a_fault(sandbox):
            rule = sandbox.add_fault(respond={"status": 503})
            assert rule["match"] == {"clientId": sandbox.client_id}
            assert create(sandbox).status_code == 503
            assert sandbox.count(status=503) == 1

        def test_after_it(sandbox):
            assert sandbox.faults() == []
            assert create(sandbox).status_code == 201
            assert [entry["status"] for entry in sandbox.requests()] == [201]
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_handle_offers_urls_seed_and_reset(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_handle(sandbox):
            assert sandbox.prefixed_url == sandbox.url + "/Profiles"
            sandbox.seed([{"ProfileId": 424242, "CustomerName": {"FirstName": "Seeded"}}])
            got = requests.get(f"{sandbox.prefixed_url}/{sandbox.client_id}/Profile/424242",
                               headers=sandbox.headers, timeout=10)
            assert got.json()["CustomerName"]["FirstName"] == "Seeded"
            sandbox.reset()
            assert sandbox.profiles() == []
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_configuration_fixture_can_be_overridden(pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def sandbox_config():
            return {"AUTH_MODE": "off", "DEFAULT_USER": "configured"}
        """
    )
    pytester.makepyfile(
        """
        import requests

        def test_configured(sandbox):
            created = requests.post(sandbox.profile_url, json={}, timeout=10)
            assert created.json()["Edited"]["CreatedBy"] == "configured"
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_a_failing_test_still_shuts_the_server_down(pytester):
    port_file = pytester.path / "port"
    pytester.makepyfile(
        f"""
        import pathlib

        def test_fails(sandbox):
            pathlib.Path({str(port_file)!r}).write_text(sandbox.url.rsplit(":", 1)[1])
            assert False, "this test fails on purpose"
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", int(port_file.read_text())))


@pytest.mark.parametrize("how", ["option", "environment"])
def test_external_url_mode_runs_the_same_tests_against_a_separate_process(pytester, monkeypatch, how):
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)
    with Launched() as launched:
        monkeypatch.setenv("EXPECTED_URL", launched.url)
        pytester.makepyfile(
            test_url="""
            import os

            def test_url(sandbox):
                assert sandbox.url == os.environ["EXPECTED_URL"]
            """
        )
        if how == "option":
            result = pytester.runpytest(f"--sandbox-url={launched.url}")
        else:
            monkeypatch.setenv("SANDBOX_URL", launched.url)
            result = pytester.runpytest()
        still_running = launched.process.poll() is None

    result.assert_outcomes(passed=3)
    assert still_running  # the tests used the external sandbox, not one of their own


def test_isolated_under_xdist(pytester):
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)
    pytester.makepyfile(test_more=CREATE_SAME_ALTERNATE_ID)

    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=4)


# --- refusing warnings ----------------------------------------------------------------------

# Authentication off: the only warnings are the ones the request bodies draw (an unknown field).
AUTH_OFF = """
import pytest

@pytest.fixture(scope="session")
def sandbox_config():
    return {"AUTH_MODE": "off"%s}
"""

WARNED_CLEAN_AND_ANOTHER_CLIENTS = """
import requests

def create(url, body):
    return requests.post(url, json=body, timeout=10)

def test_warned(sandbox):
    assert create(sandbox.profile_url, {"Colour": "red"}).status_code == 201

def test_clean(sandbox):
    assert create(sandbox.profile_url, {}).status_code == 201

def test_another_clients_warning(sandbox):
    other = f"{sandbox.client_id}-other"
    assert create(f"{sandbox.url}/{other}/Profile", {"Colour": "red"}).status_code == 201
    sandbox.control.reset(client_id=other)
"""


def failed_with_the_report(result: pytest.RunResult, test: str) -> None:
    """``test``'s failure is the report of its one warned request, and no other test's is."""
    result.stdout.fnmatch_lines(
        [
            f"_* {test} _*",
            "Requests of this test drew sandbox warnings:",
            "  POST /pytest-*/Profile",
            "    ignored unknown field 'Colour'",
            "(refused by --sandbox-fail-on-warning, *; the sandbox_allow_warnings marker accepts them)",
        ],
        consecutive=True,
    )
    # Counted as the report's own line: under CI, pytest's summary repeats the message untruncated.
    assert result.stdout.lines.count("Requests of this test drew sandbox warnings:") == 1


@pytest.mark.parametrize("how", ["option", "environment", "sandbox_config"])
def test_a_test_whose_requests_drew_a_warning_fails_when_asked(pytester, monkeypatch, how):
    pytester.makeconftest(AUTH_OFF % (', "FAIL_ON_WARNING": True' if how == "sandbox_config" else ""))
    pytester.makepyfile(WARNED_CLEAN_AND_ANOTHER_CLIENTS)
    if how == "environment":
        monkeypatch.setenv("SANDBOX_FAIL_ON_WARNING", "1")

    result = pytester.runpytest(*(["--sandbox-fail-on-warning"] if how == "option" else []))

    result.assert_outcomes(failed=1, passed=2)
    failed_with_the_report(result, "test_warned")


def test_warnings_pass_unless_asked(pytester):
    pytester.makeconftest(AUTH_OFF % "")
    pytester.makepyfile(WARNED_CLEAN_AND_ANOTHER_CLIENTS)

    pytester.runpytest().assert_outcomes(passed=3)


def test_warnings_are_refused_against_an_external_sandbox(pytester):
    pytester.makepyfile(WARNED_CLEAN_AND_ANOTHER_CLIENTS)
    with Launched(env={"SANDBOX_AUTH_MODE": "off"}) as launched:
        result = pytester.runpytest(f"--sandbox-url={launched.url}", "--sandbox-fail-on-warning")

    result.assert_outcomes(failed=1, passed=2)
    failed_with_the_report(result, "test_warned")


def test_the_config_key_is_the_plugins_own(pytester):
    pytester.makeconftest(AUTH_OFF % ', "FAIL_ON_WARNING": True')
    pytester.makepyfile(
        """
        def test_the_app_never_sees_it(sandbox):
            assert sandbox.server.app.config["AUTH_MODE"] == "off"
            assert "FAIL_ON_WARNING" not in sandbox.server.app.config
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_the_markers_refuse_or_allow_warnings_and_the_closest_decides(pytester):
    pytester.makeconftest(AUTH_OFF % "")
    pytester.makepyfile(
        """
        import pytest
        import requests

        def create(sandbox, body):
            assert requests.post(sandbox.profile_url, json=body, timeout=10).status_code == 201

        @pytest.mark.sandbox_fail_on_warning
        def test_refused(sandbox):
            create(sandbox, {"Colour": "red"})

        @pytest.mark.sandbox_fail_on_warning
        def test_refused_but_clean(sandbox):
            create(sandbox, {})

        @pytest.mark.sandbox_fail_on_warning
        def test_failing_on_its_own(sandbox):
            create(sandbox, {"Colour": "red"})
            assert False, "its own failure"

        @pytest.mark.sandbox_fail_on_warning
        class TestRefused:
            @pytest.mark.sandbox_allow_warnings
            def test_allowed(self, sandbox):
                create(sandbox, {"Colour": "red"})
                assert sandbox.count(warning="*") == 1
                assert [e["warnings"] for e in sandbox.requests(warning="ignored*")] == [
                    ["ignored unknown field 'Colour'"]
                ]
        """
    )

    result = pytester.runpytest("--strict-markers")

    result.assert_outcomes(failed=2, passed=2)
    failed_with_the_report(result, "test_refused")
    result.stdout.fnmatch_lines(["_* test_failing_on_its_own _*", "E * AssertionError: its own failure"])


def test_the_allow_marker_exempts_a_test_from_the_option(pytester):
    pytester.makeconftest(AUTH_OFF % "")
    pytester.makepyfile(
        """
        import pytest
        import requests

        def create(sandbox):
            assert requests.post(sandbox.profile_url, json={"Colour": "red"}, timeout=10).status_code == 201

        @pytest.mark.sandbox_allow_warnings
        def test_allowed(sandbox):
            create(sandbox)

        def test_refused(sandbox):
            create(sandbox)
        """
    )

    result = pytester.runpytest("--sandbox-fail-on-warning")

    result.assert_outcomes(failed=1, passed=1)
    failed_with_the_report(result, "test_refused")


def test_an_unreadable_environment_flag_is_a_usage_error(pytester, monkeypatch):
    monkeypatch.setenv("SANDBOX_FAIL_ON_WARNING", "yes")
    pytester.makepyfile("def test_never_run(): pass")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*SANDBOX_FAIL_ON_WARNING must be 1, 0, true or false, not 'yes'*"])


# --- the handle's headers -------------------------------------------------------------------


def test_the_handles_headers_are_signed_when_asked_for_and_draw_no_warning(pytester):
    pytester.makepyfile(
        """
        import time
        from datetime import UTC, datetime, timedelta

        import requests

        def issued(authorization):
            stamp = authorization.split("Credential=pytest/", 1)[1].split()[0]
            return datetime.fromisoformat(stamp).replace(tzinfo=UTC)

        def test_signed_now(sandbox):
            first = sandbox.headers["Authorization"]
            time.sleep(1.05 - time.time() % 1)  # into the next second: a fresh header differs
            again = sandbox.headers["Authorization"]
            assert first != again
            assert abs(issued(again) - datetime.now(UTC)) < timedelta(seconds=5)
            created = requests.post(sandbox.profile_url, json={}, headers=sandbox.headers, timeout=10)
            assert created.status_code == 201

        def test_signed_at_the_frozen_clock(sandbox):
            moment = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
            sandbox.control.set_clock(moment)
            try:
                authorization = sandbox.authorization(moment)
                created = requests.post(
                    sandbox.profile_url, json={}, headers={"Authorization": authorization}, timeout=10
                )
            finally:
                sandbox.control.release_clock()
            assert issued(authorization) == moment
            assert created.status_code == 201
        """
    )

    # The default authentication, refusing warnings: the handle's own headers must draw none.
    result = pytester.runpytest("--sandbox-fail-on-warning")

    result.assert_outcomes(passed=2)


# --- a locked control plane -----------------------------------------------------------------

TOKEN = "locked-in-ci"

LOCKED = """
import requests

def test_locked(sandbox):
    assert requests.get(f"{sandbox.url}/_sandbox/faults", timeout=10).status_code == 401
    sandbox.add_fault(respond={"status": 503}, times=1)
    assert requests.post(sandbox.profile_url, json={}, headers=sandbox.headers, timeout=10).status_code == 503
    assert sandbox.count(status=503) == 1
"""


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_token_reaches_an_external_sandbox_whose_control_plane_is_locked(pytester, monkeypatch, how):
    pytester.makepyfile(LOCKED)
    if how == "environment":
        monkeypatch.setenv("SANDBOX_CONTROL_TOKEN", TOKEN)
    with Launched(env={"SANDBOX_CONTROL_TOKEN": TOKEN}) as launched:
        result = pytester.runpytest(
            f"--sandbox-url={launched.url}", *([f"--sandbox-token={TOKEN}"] if how == "option" else [])
        )

    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("how", ["option", "environment", "sandbox_config"])
def test_a_token_locks_the_in_process_control_plane_and_the_handle_uses_it(pytester, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("SANDBOX_CONTROL_TOKEN", TOKEN)
    if how == "sandbox_config":
        pytester.makeconftest(
            f"""
            import pytest

            @pytest.fixture(scope="session")
            def sandbox_config():
                return {{"CONTROL_TOKEN": {TOKEN!r}}}
            """
        )
    pytester.makepyfile(LOCKED)

    result = pytester.runpytest(*([f"--sandbox-token={TOKEN}"] if how == "option" else []))

    result.assert_outcomes(passed=1)


# --- waiting for an external sandbox --------------------------------------------------------


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_unreachable_sandbox_ends_the_session_in_one_line(pytester, monkeypatch, how):
    url = f"http://127.0.0.1:{closed_port()}"
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)
    if how == "environment":
        monkeypatch.setenv("SANDBOX_WAIT", "1")

    started = time.monotonic()
    result = pytester.runpytest(f"--sandbox-url={url}", *(["--sandbox-wait=1"] if how == "option" else []))
    waited = time.monotonic() - started

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes()
    output = result.stdout.lines + result.stderr.lines
    [line] = [line for line in output if url in line]
    assert re.fullmatch(
        rf"!+ _pytest.outcomes.Exit: --sandbox-url {url}: no sandbox answered GET /_sandbox/health "
        r"with 200 within 1 s \(\[Errno 111\] Connection refused\) !+",
        line,
    )
    assert [line for line in output if "URLError" in line or "Traceback" in line] == []
    assert waited >= 1


class NotFoundPage(http.server.BaseHTTPRequestHandler):
    """A web server that is no sandbox: a 404 page for every GET."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<h1>Not Found</h1>")

    def log_message(self, *args: object) -> None:
        pass


class HangUp(socketserver.BaseRequestHandler):
    """A server that closes each connection without a word."""

    def handle(self) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[str]:
    """The URL of a server of ``handler`` on 127.0.0.1, served in a thread while in the block."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,))
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


@contextlib.contextmanager
def sandbox_without_its_redis() -> Iterator[str]:
    """The URL of a sandbox whose Redis is not there: its health answers 503."""
    with Launched("--store", f"redis://127.0.0.1:{closed_port()}/0") as launched:
        yield launched.url


@pytest.mark.parametrize(
    ("server", "cause"),
    [(lambda: serving(HangUp), "(Remote end closed connection without response)"),
     (lambda: serving(NotFoundPage), "(it answered 404)"),
     (sandbox_without_its_redis, "(it answered 503)")],
    ids=["hang-up", "not-a-sandbox", "no-redis"],
)  # fmt: skip
def test_the_one_line_names_the_cause(pytester, server, cause):
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)
    with server() as url:
        result = pytester.runpytest(f"--sandbox-url={url}", "--sandbox-wait=0.5")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.stdout.lines if url in line]
    assert f"no sandbox answered GET /_sandbox/health with 200 within 0.5 s {cause} !" in line
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("url", ["notaurl", "ftp://127.0.0.1/", "http://"])
def test_a_url_that_is_not_http_is_a_usage_error_at_once(pytester, url):
    pytester.makepyfile("def test_never_run(): pass")

    result = pytester.runpytest(f"--sandbox-url={url}", "--sandbox-wait=30")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--sandbox-url {url}: not an http:// or https:// URL*"])
    assert "JSON" not in result.stdout.str() + result.stderr.str()


def test_an_unreachable_sandbox_ends_a_session_under_xdist_in_one_line(pytester):
    url = f"http://127.0.0.1:{closed_port()}"
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)

    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", f"--sandbox-url={url}", "--sandbox-wait=0"
    )

    assert result.ret != 0
    output = result.stdout.lines + result.stderr.lines
    [line] = [line for line in output if url in line]
    assert "Interrupted: --sandbox-url" in line
    assert [line for line in output if re.search("URLError|Traceback|INTERNALERROR", line)] == []


def test_a_sandbox_that_is_not_up_yet_is_waited_for(pytester):
    port = closed_port()
    late: list[Launched] = []

    def start_late() -> None:
        time.sleep(1)
        late.append(Launched("--port", str(port)))

    starter = threading.Thread(target=start_late)
    starter.start()
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)
    try:
        result = pytester.runpytest(f"--sandbox-url=http://127.0.0.1:{port}")
    finally:
        starter.join()
        for launched in late:
            launched.__exit__()

    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("option", "variable", "error"),
    [("--sandbox-wait=-1", None, "--sandbox-wait (SANDBOX_WAIT) must be 0 or more seconds"),
     (None, "-1", "--sandbox-wait (SANDBOX_WAIT) must be 0 or more seconds"),
     (None, "soon", "SANDBOX_WAIT must be a number of seconds, not 'soon'")],
)  # fmt: skip
def test_an_unusable_wait_is_a_usage_error(pytester, monkeypatch, option, variable, error):
    if variable is not None:
        monkeypatch.setenv("SANDBOX_WAIT", variable)
    pytester.makepyfile("def test_never_run(): pass")

    result = pytester.runpytest(*filter(None, [option]))

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{error}*"])


# --- the in-process sandbox's logs ----------------------------------------------------------

FAILS_AFTER_REQUESTS = """
import requests

def test_fails(sandbox):
    sandbox.add_fault(respond={"status": 503}, times=1)
    for status in (503, 201):
        created = requests.post(sandbox.profile_url, json={}, headers=sandbox.headers, timeout=10)
        assert created.status_code == status
    assert False, "this test fails on purpose"
"""


def test_the_in_process_sandbox_logs_nothing_into_a_tests_captured_log(pytester):
    pytester.makepyfile(FAILS_AFTER_REQUESTS)

    # At INFO, the level a project's logging is often captured at.
    result = pytester.runpytest("--log-level=INFO")

    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "Captured log" not in output
    assert not re.search(r"werkzeug|sandbox\.requests|\x1b\[", output)


def test_the_log_option_shows_the_sandboxs_line_per_request(pytester):
    pytester.makepyfile(FAILS_AFTER_REQUESTS)

    result = pytester.runpytest("--sandbox-log")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- Captured log call -*",
            "INFO     mypreferences_sandbox.requests:* POST /_sandbox/faults 201 *ms client=- fault=-",
            "INFO     mypreferences_sandbox.requests:* POST /pytest-*/Profile 503 *ms client=pytest-* fault=f*",
            "INFO     mypreferences_sandbox.requests:* POST /pytest-*/Profile 201 *ms client=pytest-* fault=-",
        ]
    )
    assert not re.search(r"werkzeug|\x1b\[", result.stdout.str())


# --- the handle -----------------------------------------------------------------------------


def test_the_handle_reads_rules_moves_the_clock_and_releases_it_after_the_test(pytester):
    pytester.makepyfile(
        """
        from datetime import UTC, datetime

        import requests

        def create(sandbox):
            return requests.post(sandbox.profile_url, json={}, headers=sandbox.headers, timeout=10)

        def test_reads_a_rule(sandbox):
            rule = sandbox.add_fault({"respond": {"status": 500}}, respond={"status": 503}, times=2)
            assert create(sandbox).status_code == 503
            assert (sandbox.fault(rule["id"])["hits"], sandbox.fault(rule["id"])["remaining"]) == (1, 1)
            assert create(sandbox).status_code == 503
            assert create(sandbox).status_code == 201
            assert [entry["status"] for entry in sandbox.requests(limit=2)] == [503, 201]
            assert sandbox.count(status=503) == 2

        def test_moves_and_releases_the_clock(sandbox):
            assert sandbox.set_clock(datetime(2030, 1, 1, tzinfo=UTC)) == {
                "now": "2030-01-01T00:00:00.000Z", "frozen": True
            }
            assert sandbox.advance_clock(90)["now"] == "2030-01-01T00:01:30.000Z"
            assert sandbox.release_clock()["frozen"] is False

        def test_leaves_the_clock_frozen(sandbox):
            sandbox.set_clock("2030-01-01T00:00:00Z")
            assert sandbox.clock()["frozen"]

        def test_finds_it_released(sandbox):
            assert sandbox.clock()["frozen"] is False
        """
    )

    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_the_fixtures_say_what_they_give(pytester):
    result = pytester.runpytest("--fixtures")

    result.stdout.fnmatch_lines(
        [
            "sandbox_config [[]session scope[]] -- *pytest_plugin.py:*",
            "    Settings of the in-process sandbox, by their SANDBOX_* names without the prefix",
            "sandbox_server [[]session scope[]] -- *pytest_plugin.py:*",
            "    The session's sandbox (``url``, ``control``): in-process on a free port, or the one at",
            "sandbox -- *pytest_plugin.py:*",
            "    A SandboxHandle for this test, bound to a clientId no other test uses: URLs, headers, fault",
        ]
    )


# --- the CI example -------------------------------------------------------------------------


def test_the_ci_example_builds_and_starts_the_sandbox_before_its_tests_run_against_it():
    page = (ROOT / "docs" / "container.md").read_text()
    [text] = re.findall(r"^## In CI\n(.*?)(?=^## |\Z)", page, re.M | re.S)
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.S)

    workflow = yaml.safe_load(block)

    [job] = workflow["jobs"].values()
    # A service container starts before the job's first step, so no step could build its image.
    assert "services" not in job
    assert all(("uses" in step) != ("run" in step) for step in job["steps"])
    runs = [step.get("run", "") for step in job["steps"]]
    [built] = [index for index, run in enumerate(runs) if "docker build" in run]
    [started] = [index for index, run in enumerate(runs) if "docker run -d" in run]
    [tested] = [index for index, run in enumerate(runs) if "pytest --sandbox-url" in run]
    assert built <= started < tested
    assert "-e SANDBOX_CONTROL_TOKEN" in runs[started]
    assert "--sandbox-wait" in runs[tested]


def test_an_unknown_variable_is_a_warning_of_the_in_process_sandbox(pytester, monkeypatch):
    monkeypatch.setenv("SANDBOX_CONTROLTOKEN", "t")
    pytester.makepyfile(CREATE_SAME_ALTERNATE_ID)

    # Shown, not raised: an inner session in this process inherits this suite's filterwarnings=error.
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "default::UserWarning")

    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "*SandboxConfigWarning: SANDBOX_CONTROLTOKEN is not a setting; did you mean SANDBOX_CONTROL_TOKEN?",
        ]
    )
