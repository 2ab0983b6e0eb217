"""The application factory's configuration layers and their checks."""

from __future__ import annotations

import gc

import pytest
from flask import url_for
from helpers import FIXTURES, minimal_profile, send
from mypreferences_sandbox import create_app
from mypreferences_sandbox.settings import DEFAULTS


def test_defaults_are_safe():
    config = create_app().config

    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert config["MAX_NESTING_DEPTH"] == 32
    assert config["MAX_WARNINGS"] == 20
    assert {key: config[key] for key in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(
    ("endpoint", "values", "url"),
    [
        ("api.get_profile", {"client_id": "a b", "profile_id": 7}, "http://one.test/a%20b/Profile/7"),
        ("prefixed_api.get_profile", {"client_id": "acme", "profile_id": 7}, "http://one.test/Profiles/acme/Profile/7"),
        ("control.get_fault", {"rule_id": "f1", "x": "y"}, "http://one.test/_sandbox/faults/f1?x=y"),
    ],
)  # fmt: skip
def test_every_app_of_a_process_builds_its_own_urls(endpoint, values, url):
    # The apps share their URL rules' compiled builders (sandbox/mypreferences_sandbox/app.py); each builds with its own.
    built = []
    for base_url in ("http://one.test", "http://two.test"):
        app = create_app()
        with app.test_request_context(base_url=base_url):
            built.append(url_for(endpoint, **values, _external=True))

    assert built == [url, url.replace("one.test", "two.test")]


def test_the_factory_leaves_the_garbage_collector_alone():
    # The pytest fixture's app lives in the test process: only the command line's worker freezes
    # its start-up out of the collector's reach and sets its thresholds (sandbox/mypreferences_sandbox/__main__.py).
    before = gc.get_freeze_count(), gc.get_threshold()

    create_app({"SEED_FILE": str(FIXTURES / "seed.json")})

    assert (gc.get_freeze_count(), gc.get_threshold()) == before


def test_environment_overrides_defaults_and_arguments_override_both(monkeypatch):
    monkeypatch.setenv("SANDBOX_MAX_CONTENT_LENGTH", "2048")
    monkeypatch.setenv("SANDBOX_DEFAULT_USER", "ci")
    monkeypatch.setenv("SANDBOX_ACCOUNTS", '{"acme": {"DefaultLocale": "fr_FR"}}')

    config = create_app({"DEFAULT_USER": "test"}).config

    assert config["MAX_CONTENT_LENGTH"] == 2048
    assert config["ACCOUNTS"] == {"acme": {"DefaultLocale": "fr_FR"}}
    assert config["DEFAULT_USER"] == "test"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"MAX_CONTENT_LENGTH": 0}, "SANDBOX_MAX_CONTENT_LENGTH must be a positive integer, not 0"),
        ({"MAX_NESTING_DEPTH": "deep"}, "SANDBOX_MAX_NESTING_DEPTH must be a positive integer, not 'deep'"),
        ({"MAX_WARNINGS": True}, "SANDBOX_MAX_WARNINGS must be a positive integer, not True"),
        ({"ACCOUNTS": ["acme"]}, "SANDBOX_ACCOUNTS must be a JSON object of clientId -> settings"),
    ],
)
def test_unusable_settings_are_refused_by_name(config, message):
    with pytest.raises(ValueError, match=message):
        create_app(config)


def test_unusable_environment_setting_is_refused(monkeypatch):
    monkeypatch.setenv("SANDBOX_MAX_CONTENT_LENGTH", "-5")

    with pytest.raises(ValueError, match="SANDBOX_MAX_CONTENT_LENGTH"):
        create_app()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ACCOUNTS": {"acme": 5}}, "SANDBOX_ACCOUNTS must be a JSON object"),
        ({"DEFAULT_LOCALE": "x" * 16}, "SANDBOX_DEFAULT_LOCALE must be text of 1 to 15 characters"),
        ({"DEFAULT_CUSTOMER_TYPE": ""}, "SANDBOX_DEFAULT_CUSTOMER_TYPE must be text of 1 to 100 characters"),
        (
            {"ACCOUNTS": {"acme": {"DefaultLocale": "x" * 16}}},
            "SANDBOX_ACCOUNTS.acme.DefaultLocale must be text",
        ),
        ({"AUTH_TOKEN_SECONDS": 10**12}, "at most ten years"),
    ],
)
def test_settings_that_would_fail_later_are_refused_at_start(config, message):
    with pytest.raises(ValueError, match=message):
        create_app(config)


@pytest.mark.parametrize("client_id", ["%2E%2E", "%2E", "%FF", "%FE", "a%FFb"])
def test_a_client_id_that_names_no_account_is_404(served, client_id):
    response = send("POST", f"{served.url}/{client_id}/Profile", minimal_profile())

    assert response.status_code == 404
    assert "Location" not in response.headers
