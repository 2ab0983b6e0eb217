"""The control client and the handle, typed: a consumer's misspelt rule field or journal filter fails
``mypy --strict``; and what their keywords send."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
from helpers import Served
from mypreferences_sandbox.contract import control_schemas
from mypreferences_sandbox.testing import control_client
from mypreferences_sandbox.testing.control_client import ControlClient
from mypy import api

CONSUMER = Path(__file__).resolve().parent / "typed_consumer"
# mypy's lines: "path:line: error: message  [code]".
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], str]:
    """``mypy --strict``'s errors on the typed consumer's files, by (file name, line)."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    # As a consumer's own run sees the installed package: its settings, not this project's (no
    # config file), and errors reported in its files only (the package's imports are followed
    # silently).
    stdout, stderr, _ = api.run(
        ["--strict", "--follow-imports=silent", "--config-file", "", "--cache-dir", str(cache),
         *map(str, sorted(CONSUMER.glob("*.py")))]
    )  # fmt: skip
    assert stderr == ""
    errors: dict[tuple[str, int], str] = {}
    for found in filter(None, map(ERROR.match, stdout.splitlines())):
        errors[(Path(found["path"]).name, int(found["line"]))] = found["message"]
    return errors


def expected_errors(name: str) -> dict[tuple[str, int], str]:
    """The ``# error: ...`` comments of a consumer's file, by (file name, line)."""
    lines = (CONSUMER / name).read_text().splitlines()
    return {
        (name, number): line.split("# error: ", 1)[1]
        for number, line in enumerate(lines, 1)
        if "# error: " in line
    }


def test_a_correct_consumer_passes_mypy_strict(mypy_errors):
    assert {key: message for key, message in mypy_errors.items() if key[0] == "good.py"} == {}


def test_misspelt_or_mistyped_calls_fail_mypy_strict_naming_what_is_wrong(mypy_errors):
    expected = expected_errors("bad.py")
    found = {key: message for key, message in mypy_errors.items() if key[0] == "bad.py"}

    assert set(found) == set(expected)
    for key, message in expected.items():
        assert message in found[key], key
    assert sum('Unexpected keyword argument "tims"' in message for message in found.values()) == 2


def test_the_clients_types_name_what_the_control_plane_takes():
    # The client imports nothing of the package but the control prefix, so it keeps its own lists.
    assert get_args(control_client.ConnectionFaultType) == control_schemas.CONNECTION_FAULTS
    assert get_args(control_client.When) == control_schemas.WHEN
    unparsed = get_type_hints(control_client.JournalEntry)["bodyNotParsed"]  # NotRequired dropped
    assert get_args(unparsed) == control_schemas.UNPARSED
    assert set(control_client.FILTERS.values()) == set(control_schemas.RequestFilterSchema().fields)
    assert control_client.Match.__optional_keys__ == set(control_schemas.MatchSchema().fields)
    assert control_client.FaultRule.__optional_keys__ == set(control_schemas.RuleSchema().fields)


@pytest.fixture(scope="module")
def client() -> Iterator[ControlClient]:
    """A control client of a sandbox of this module's own."""
    with Served() as served:
        yield ControlClient(served.url)


def test_a_rule_given_as_a_dict_and_as_keywords_is_one_rule_the_keywords_winning(client):
    rule = client.add_fault(
        {"match": {"clientId": "acme"}, "respond": {"status": 500}, "times": 1},
        respond={"status": 503},
        expiresAt=datetime(2031, 1, 1, tzinfo=UTC),
    )

    assert (rule["match"], rule["respond"], rule["times"]) == ({"clientId": "acme"}, {"status": 503}, 1)
    assert rule["expiresAt"] == "2031-01-01T00:00:00.000Z"
    assert client.fault(rule["id"]) == rule
