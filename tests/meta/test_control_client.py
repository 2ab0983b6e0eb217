"""The control client and the handle, typed: a consumer's misspelt rule field or journal filter fails
``mypy --strict``; the client's TypedDicts are the control plane's schemas, field by field; and what
their keywords send."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import NoneType, UnionType
from typing import (
    Any,
    Literal,
    NotRequired,
    Required,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import pytest
from helpers import Served
from marshmallow import Schema, fields, validate
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


# --- each TypedDict, field by field against its schema -------------------------------------

# The schema each of the client's TypedDicts stands for: what the sandbox takes, and what it answers.
TAKEN = {
    control_client.Match: control_schemas.MatchSchema,
    control_client.Uniform: control_schemas.UniformSchema,
    control_client.Lognormal: control_schemas.LognormalSchema,
    control_client.Delay: control_schemas.DelaySchema,
    control_client.Respond: control_schemas.RespondSchema,
    control_client.ConnectionFault: control_schemas.ConnectionFaultSchema,
    control_client.FaultRule: control_schemas.RuleSchema,
    control_client.EntryFilters: control_schemas.RequestFilterSchema,
    control_client.StateDocument: control_schemas.StateSchema,
}
ANSWERED = {
    control_client.FaultReport: control_schemas.FaultReport,
    control_client.Firing: control_schemas.Firing,
    control_client.NearMiss: control_schemas.NearMiss,
    control_client.JournalEntry: control_schemas.JournalEntry,
    control_client.Health: control_schemas.Health,
    control_client.Clock: control_schemas.ClockReport,
    control_client.ImportReport: control_schemas.ImportReport,
    control_client.Accounts: control_schemas.AccountsReport,
}
SCHEMA_OF: dict[Any, type[Schema]] = TAKEN | ANSWERED
# requests() and count() take these two filters as keywords of their own (client_id, limit).
OWN_KEYWORDS = {(control_client.EntryFilters, "clientId"), (control_client.EntryFilters, "limit")}
# The client takes these in a form of its own and sends them as the schema reads them: one method
# as it is (MatchSchema reads it as a list of one), the body filter as <pointer>=<value> texts.
AS_SENT = {(control_client.Match, "method"): list[str], (control_client.EntryFilters, "body"): list[str]}
SCALARS = {str: fields.String, int: fields.Integer, float: fields.Float, bool: fields.Boolean}


def choices(field: fields.Field) -> set[Any] | None:
    """The values a field's OneOf admits (None: it has none)."""
    found = [check.choices for check in field.validators if isinstance(check, validate.OneOf)]
    return set(found[0]) if found else None


def fits(hint: Any, field: fields.Field | None) -> bool:
    """Whether the client's type ``hint`` is what ``field`` describes; None, as a Raw field, is a
    value the schema leaves open (a Dict's keys or values it does not name)."""
    if field is None or type(field) is fields.Raw:
        return True
    members = set(get_args(hint)) if isinstance(hint, UnionType) else {hint}
    if (NoneType in members) != field.allow_none:
        return False
    members.discard(NoneType)
    if isinstance(field, fields.DateTime):  # ISO 8601 text, or a datetime the client writes so
        return members == {datetime, str}
    if len(members) != 1:
        return False
    (hint,) = members
    if get_origin(hint) is Literal:
        return isinstance(field, fields.String) and choices(field) == set(get_args(hint))
    if hint is str and field.metadata.get("type") == "string":  # a text the field parses itself
        return True
    if hint in SCALARS:
        return isinstance(field, SCALARS[hint]) and choices(field) is None
    if get_origin(hint) is list:
        return isinstance(field, fields.List) and fits(get_args(hint)[0], field.inner)
    if get_origin(hint) is dict:
        keys, values = get_args(hint)
        return (
            isinstance(field, fields.Dict) and fits(keys, field.key_field) and fits(values, field.value_field)
        )
    if is_typeddict(hint):
        # A report's schema may be its payload's, its loaded defaults required (a rule's fault).
        return isinstance(field, fields.Nested) and isinstance(field.schema, SCHEMA_OF[hint])
    return False


def required_keys(typed: Any) -> set[str]:
    """The keys of ``typed`` a type checker holds required. Its ``__required_keys__`` cannot tell:
    under postponed annotations, the class sees ``NotRequired[...]`` as text."""
    hints = get_type_hints(typed, include_extras=True)
    return {
        key
        for key, hint in hints.items()
        if get_origin(hint) is Required or (typed.__total__ and get_origin(hint) is not NotRequired)
    }


def test_every_typed_dict_of_the_client_has_its_schema():
    typed_dicts = {value for value in vars(control_client).values() if is_typeddict(value)}

    assert typed_dicts == set(SCHEMA_OF)


@pytest.mark.parametrize(("typed", "shape"), SCHEMA_OF.items(), ids=lambda each: each.__name__)
def test_a_typed_dict_is_its_schema_field_by_field(typed, shape):
    described = {
        field.data_key or name: field
        for name, field in shape().fields.items()
        if (typed, field.data_key or name) not in OWN_KEYWORDS
    }
    hints = get_type_hints(typed)  # NotRequired and Required dropped: required_keys tells them

    assert set(hints) == set(described)
    assert required_keys(typed) == {key for key, field in described.items() if field.required}
    unfit = {
        key: hint for key, hint in hints.items() if not fits(AS_SENT.get((typed, key), hint), described[key])
    }
    assert unfit == {}


@pytest.mark.parametrize(
    ("hint", "field"),
    [(str, fields.Integer()),
     (int, fields.String()),
     (int, fields.Float()),
     (bool, fields.Integer()),
     (Any, fields.String()),
     (int | None, fields.Integer()),
     (int, fields.Integer(allow_none=True)),
     (str, fields.String(validate=validate.OneOf(["ok"]))),
     (Literal["a"], fields.String(validate=validate.OneOf(["b"]))),
     (list[str], fields.String()),
     (list[str], fields.List(fields.Integer())),
     (dict[str, int], fields.List(fields.Integer())),
     (dict[str, int], fields.Dict(values=fields.String())),
     (str, fields.DateTime()),
     (control_client.NearMiss, fields.Dict()),
     (control_client.NearMiss, fields.Nested(control_schemas.Firing))],
)  # fmt: skip
def test_a_field_retyped_on_either_side_does_not_fit(hint, field):
    assert not fits(hint, field)


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
