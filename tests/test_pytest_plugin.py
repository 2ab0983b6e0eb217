"""The pytest plugin, run as a user runs it: inner pytest sessions through pytester."""

from __future__ import annotations

import socket

import pytest
from helpers import Launched

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
