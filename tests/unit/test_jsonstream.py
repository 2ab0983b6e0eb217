"""A state document read as it arrives: the same values and the same 400s as a body parsed whole."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mypreferences_sandbox.contract.errors import BadRequest
from mypreferences_sandbox.wire import jsonstream
from mypreferences_sandbox.wire.formats import parse_json
from mypreferences_sandbox.wire.jsonstream import StateDocument

DEPTH = 32


def read(raw: bytes) -> tuple[dict, dict]:
    """A document's clients (each client's profiles read whole) and its other members."""
    document = StateDocument(io.BytesIO(raw), DEPTH)
    clients = {
        client_id: list(profiles)
        if not isinstance(profiles, list | dict | str | int | float | None)
        else profiles
        for client_id, profiles in document.clients()
    }
    return clients, document.other


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
documents = st.fixed_dictionaries(
    {"clients": st.dictionaries(st.text(min_size=1, max_size=5), st.lists(values, max_size=4), max_size=3)},
    optional={"accounts": st.dictionaries(st.text(max_size=5), values, max_size=2)},
)


@given(document=documents, indent=st.sampled_from([None, 0, 2]), chunk=st.integers(1, 64))
def test_a_streamed_document_reads_as_one_parsed_whole(document, indent, chunk):
    raw = json.dumps(document, indent=indent, ensure_ascii=bool(chunk % 2)).encode()

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(jsonstream, "CHUNK", chunk)  # values cut across reads at every place
        clients, other = read(raw)

    assert clients == document["clients"]
    assert other == {key: value for key, value in document.items() if key != "clients"}
    assert parse_json(raw, DEPTH) == document


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"clients": {"acme": [{"a": 1}', "The body is not valid JSON"),
        (b'{"clients": {}} x', "The body is not valid JSON: extra data after the document."),
        (b'{"clients": {"acme": [1 2]}}', "The body is not valid JSON: expected ']', found '2'."),
        (b"[]", "A state document is a JSON object."),
        (b'{"clients": {"acme": [{"a": "\\ud800"}]}}', "The body holds a lone UTF-16 surrogate"),
        (
            b'{"clients": {"acme": [' + b"[" * 40 + b"]" * 40 + b"]}}",
            "The body is nested more than 32 levels deep.",
        ),
        (b'{"clients": {"acme": [NaN]}}', "The body is not valid JSON: NaN is not a JSON value"),
        (b'{"clients": {"acme": ["\xff"]}}', "The body is not valid UTF-8"),
        (
            b'{"clients": {"acme": [1' + b"1" * 5000 + b"]}}",
            "The body holds a number of more than 4300 digits.",
        ),
        (b'{"clients": {"acme": [],}}', "The body is not valid JSON: expected a member name, found '}'."),
        (b'{"clients": {"acme": [{"a": 1},]}}', "The body is not valid JSON"),
        (b'{"clients": {"acme": []},}', "The body is not valid JSON: expected a member name, found '}'."),
        (
            b'{"clients": {"acme": []}, "clients": {"b": []}}',
            "The state document names its member 'clients' twice.",
        ),
        (b'{"accounts": {}, "accounts": {}}', "The state document names its member 'accounts' twice."),
    ],
    ids=[
        "truncated",
        "trailing",
        "no-comma",
        "not-an-object",
        "lone-surrogate",
        "deep",
        "nan",
        "utf8",
        "long-number",
        "comma-before-brace",
        "comma-before-bracket",
        "comma-at-the-end",
        "clients-twice",
        "accounts-twice",
    ],
)
def test_a_broken_document_is_the_400_of_a_broken_body(raw, message):
    with pytest.raises(BadRequest) as raised:
        read(raw)

    [(key, [said])] = raised.value.model_state.items()
    assert key == "body"
    assert said.startswith(message), said


def test_an_empty_body_is_an_empty_document():
    assert read(b"  ") == ({}, {})


class Counted(io.BytesIO):
    """A stream that remembers how much of it has been read."""

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def test_profiles_are_read_one_at_a_time_as_the_stream_arrives(monkeypatch):
    monkeypatch.setattr(jsonstream, "CHUNK", 1024)
    profile = {"CustomerName": {"FirstName": "x" * 100}}
    raw = json.dumps({"clients": {"acme": [profile] * 10_000}}).encode()
    stream = Counted(raw)
    client_id, profiles = next(StateDocument(stream, DEPTH).clients())

    first = next(profiles)

    assert (client_id, first) == ("acme", profile)
    assert stream.taken <= 2048  # of some 420 KB
