"""The names of the SANDBOX_* variables: which are known, and what an unknown one is told."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypreferences_sandbox.app import create_app
from mypreferences_sandbox.settings import (
    DEFAULTS,
    KNOWN_VARIABLES,
    SETTINGS,
    check_config,
    unknown_variables,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_a_known_variable():
    assert {f"SANDBOX_{key}" for key in SETTINGS} <= KNOWN_VARIABLES


def test_every_known_variable_is_documented():
    manual = "".join(page.read_text() for page in DOCS.glob("*.md"))

    assert [name for name in sorted(KNOWN_VARIABLES) if f"`{name}`" not in manual] == []


@pytest.mark.parametrize(
    "name",
    ["SANDBOX_MAX_SEARCH_RESULTS", "SANDBOX_PORT", "SANDBOX_WORKERS", "SANDBOX_URL", "SANDBOX_WAIT",
     "SANDBOX_FAIL_ON_WARNING", "SANDBOX_IMAGE", "SANDBOX_ACCOUNTS__acme__DefaultLocale", "SANDBOX",
     "OTHER_PORT", "sandbox_port"],
)  # fmt: skip
def test_a_known_or_foreign_name_says_nothing(name):
    assert unknown_variables({name: "1"}) == []


@pytest.mark.parametrize(
    ("name", "told"),
    [("SANDBOX_MAX_SEARCH_RESULT", "did you mean SANDBOX_MAX_SEARCH_RESULTS?"),
     ("SANDBOX_CONTROLTOKEN", "did you mean SANDBOX_CONTROL_TOKEN?"),
     ("SANDBOX_SEEDFILE", "did you mean SANDBOX_SEED_FILE?"),
     ("SANDBOX_PROT", "did you mean SANDBOX_PORT?"),
     ("SANDBOX_ACCOUNT__acme", "did you mean SANDBOX_ACCOUNTS?"),
     ("SANDBOX_QQQ", "no known name is close")],
)  # fmt: skip
def test_an_unknown_name_is_told_the_closest_known_one(name, told):
    assert unknown_variables({name: "1"}) == [f"{name} is not a setting; {told}"]


def test_one_line_per_unknown_name_in_order():
    environ = {"SANDBOX_ZZZ": "1", "SANDBOX_PORT": "0", "SANDBOX_HOTS": "x"}

    assert [line.split()[0] for line in unknown_variables(environ)] == ["SANDBOX_HOTS", "SANDBOX_ZZZ"]


def test_a_nested_variable_changes_its_app_and_not_the_defaults(monkeypatch):
    monkeypatch.setenv("SANDBOX_ACCOUNTS__acme", '{"DefaultLocale": "fr_FR"}')

    configured = create_app()
    monkeypatch.delenv("SANDBOX_ACCOUNTS__acme")
    later = create_app()

    assert configured.config["ACCOUNTS"] == {"acme": {"DefaultLocale": "fr_FR"}}
    assert later.config["ACCOUNTS"] == {}


def test_a_misspelt_key_of_a_config_is_refused_naming_the_setting():
    with pytest.raises(ValueError, match=r"^CONTROL_TOKN is not a setting; did you mean CONTROL_TOKEN\?$"):
        create_app({"CONTROL_TOKN": "t"})


def test_flasks_own_keys_are_taken():
    assert create_app({"TESTING": True}).testing


@pytest.mark.parametrize("store", ["redis://127.0.0.1:6379", "redis://127.0.0.1:6379/", "rediss://h:1/15"])
def test_a_redis_url_with_a_database_number_or_none_is_taken(store):
    check_config({**DEFAULTS, "STORE": store})


@pytest.mark.parametrize(
    "store", ["redis://127.0.0.1:6379/abc", "redis://:secret@h:1/0/1", "rediss://h:1/-1"]
)
def test_a_redis_database_that_is_not_a_number_is_refused_without_the_password(store):
    with pytest.raises(ValueError, match=r"^SANDBOX_STORE's database must be a whole number") as refused:
        check_config({**DEFAULTS, "STORE": store})

    assert "secret" not in str(refused.value)


@pytest.mark.parametrize("token", ["a b", "tab\there", "new\nline", "", "nbsp\xa0", "bell\x07"])
def test_a_control_token_that_is_not_one_run_of_visible_characters_is_refused(token):
    with pytest.raises(ValueError, match=r"^SANDBOX_CONTROL_TOKEN must be visible characters without spaces"):
        check_config({**DEFAULTS, "CONTROL_TOKEN": token})


@pytest.mark.parametrize("token", [None, "let-me-in", 12345, "Ünïcode"])
def test_a_control_token_of_visible_characters_is_taken(token):
    check_config({**DEFAULTS, "CONTROL_TOKEN": token})
