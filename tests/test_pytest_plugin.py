"""The pytest plugin, run as a user runs it: inner pytest sessions through pytester."""

from __future__ import annotations

import socket

import pytest
from helpers import Launched, minimal_profile, post_json

from sandbox.pytest_plugin import InProcessServer

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
    # Their apps share the URL rules' compiled builders (sandbox/app.py), not the URLs built.
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
