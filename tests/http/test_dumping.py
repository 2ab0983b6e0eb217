"""The compiled dumps: each response shape dumps as marshmallow does, key order included; a schema the
compiler does not know dumps through marshmallow; JSON bodies are compact."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import fixture_json, minimal_profile, post_json, send
from marshmallow import Schema, fields, post_dump, pre_dump
from mypreferences_sandbox.contract import schemas
from mypreferences_sandbox.testing.control_client import ControlClient
from mypreferences_sandbox.wire import dumping, formats

# Every shape of the contract's wire, the history answers' included.
SHAPES = sorted(
    {
        shape
        for shape in vars(schemas).values()
        if isinstance(shape, type) and issubclass(shape, schemas.Wire)
    },
    key=lambda shape: f"{shape.__module__}.{shape.__name__}",
)
# The shapes exchange.respond dumps.
ANSWERS = (
    schemas.UserProfile,
    schemas.ConsentStatusList,
    schemas.AlternateIdTypeEntryList,
    schemas.AddressTypeEntryList,
    schemas.ConsentTypeEntryList,
    schemas.ConsentHistory,
    schemas.HistoricalPreference,
    schemas.ConsentFilter,
)
PAIR = {"AlternateIdType": "crm", "AlternateId": "C-7"}
NEWS = {"FilterId": "news", "PreferenceType": 1, "PreferenceAttributes": [{"Key": "source", "Value": "web"}]}
PROMO = {"FilterId": "promo", "PreferenceType": 2, "FrequencyId": "weekly"}
ADDRESS = {"Address1": "1 Main St", "City": "Atlanta", "StateProvince": "GA", "PostalCode": "30301"}
CONSENT = {"ConsentType": "marketing", "ConsentVersion": "v1", "Locale": "en_US", "ConsentStatus": 1}


def text(value: Any) -> str:
    """JSON text that keeps the order of every object's keys, at every level."""
    return json.dumps(value, ensure_ascii=False, default=repr)


def compact(value: Any) -> bytes:
    """The JSON body the sandbox wrote before, without its spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def assert_dumps_alike(schema: Schema, document: Any) -> None:
    assert text(dumping.dumper(schema)(document)) == text(schema.dump(document))


# --- documents ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant(served) -> Iterator[str]:
    """A clientId of profiles made over HTTP: the rich create sample, deactivated with and without a
    reason, with preferences on every kind of contact element (some archived) and consents."""
    client_id = f"client-{uuid.uuid4().hex[:12]}"
    url = f"{served.url}/{client_id}/Profile"

    def create(body: dict) -> int:
        response = post_json(url, body)
        assert response.status_code == 201, response.text
        return response.json()["ProfileId"]

    rich = fixture_json("create-profile.json")
    create(rich)
    other = rich | {"AlternateIds": [{"AlternateIdType": "crm", "AlternateId": "rich-2"}]}
    assert send("POST", f"{url}/{create(other)}/Deactivate", {"Reason": "moved"}).status_code == 200
    assert send("POST", f"{url}/{create(minimal_profile())}/Deactivate").status_code == 200
    chosen = create(
        minimal_profile(
            AlternateIds=[PAIR],
            CustomerName={"FirstName": "Zoë 😀", "LastName": "Ünal\u2028"},
            Emails=[
                {
                    "EmailAddress": "ann@example.com",
                    "EmailAddressType": "Personal",
                    "EmailPreferences": [PROMO],
                }
            ],
            PhoneNumbers=[{"PhoneNumber": "404-555-0100", "PhoneType": "Mobile", "PhonePreferences": [NEWS]}],
            Addresses=[ADDRESS | {"CountryCode_Alpha2": "US", "AddressPreferences": [NEWS, PROMO]}],
            ProfilePreferences=[NEWS, PROMO],
        )
    )
    upsert = {
        "ProfilePreferences": [PROMO | {"FilterId": "more"}],
        "PhoneNumbers": [{"PhoneNumber": "1", "PhonePreferences": [PROMO]}],
    }
    assert send("POST", f"{url}/Preferences/AlternateIdType/crm/AlternateId/C-7", upsert).status_code == 200
    archive = {"ProfilePreferences": [{"FilterId": "promo", "Reason_Code": "asked"}]}
    assert send("PUT", f"{url}/Preferences/{chosen}/Archive", archive).status_code == 204
    consents = {"Consents": [CONSENT, CONSENT | {"ConsentStatus": 3, "ConsentDate": "2026-01-02T03:04:05Z"}]}
    assert send("POST", f"{served.url}/{client_id}/Consents/{chosen}", consents).status_code == 200
    yield client_id
    ControlClient(served.url).reset(client_id=client_id)


@pytest.fixture(scope="module")
def stored(served, tenant) -> list[dict]:
    """The tenant's profiles, as the store holds them."""
    return served.profiles(tenant)


def collect(schema: Schema, document: Any, found: dict[type, list]) -> None:
    """``document`` under its shape, and each object in it under the shape of the field holding it."""
    found[type(schema)].append(document)
    for name, field in schema.dump_fields.items():
        value = document.get(field.attribute or name)
        if isinstance(field, fields.Nested) and isinstance(value, dict):
            collect(field.schema, value, found)
        elif (
            isinstance(field, fields.List)
            and isinstance(field.inner, fields.Nested)
            and isinstance(value, list)
        ):
            for entry in value:
                if isinstance(entry, dict):
                    collect(field.inner.schema, entry, found)


def sample(schema: Schema) -> dict:
    """A document with a value for every field of ``schema``."""
    return {field.attribute or name: _sample_value(field, name) for name, field in schema.dump_fields.items()}


def _sample_value(field: fields.Field, name: str) -> Any:
    if isinstance(field, fields.Nested):
        return sample(field.schema)
    if isinstance(field, fields.List):
        return [_sample_value(field.inner, name), _sample_value(field.inner, name)]
    if isinstance(field, fields.Dict):
        return {"Version": "1", "At": None}
    if isinstance(field, fields.String):
        return f"{name} ë"
    if isinstance(field, fields.Integer):
        return 7
    if isinstance(field, fields.Boolean):
        return True
    return 2  # a Choice, or Raw


@pytest.fixture(scope="module")
def documents(stored) -> dict[type, list]:
    """Documents of each shape: the stored profiles and the objects in them, the create sample's,
    and a sample of every shape."""
    found: dict[type, list] = defaultdict(list)
    for profile in stored:
        collect(schemas.UserProfile(), profile, found)
        collect(schemas.ConsentHistory(), profile, found)
    collect(schemas.CreateUserProfile(), fixture_json("create-profile.json"), found)
    for shape in SHAPES:
        found[shape].append(sample(shape()))
    return found


def variants(schema: Schema, document: dict, depth: int = 0) -> Iterator[Any]:
    """``document``, and it changed in every way a dump meets: a key missing, a None, an empty or
    falsy value, a value of another type to convert; the same one level down; as an object."""
    yield document
    yield {}
    yield SimpleNamespace(**document)
    for key, value in document.items():
        yield {name: item for name, item in document.items() if name != key}
        yield document | {key: None}
        for other in _others(value):
            yield document | {key: other}
    if depth > 0:
        return
    for name, field in schema.dump_fields.items():
        key = field.attribute or name
        value = document.get(key)
        if isinstance(field, fields.Nested) and isinstance(value, dict):
            for changed in variants(field.schema, value, depth + 1):
                yield document | {key: changed}
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested) and value:
            for changed in variants(field.inner.schema, value[0], depth + 1):
                yield document | {key: [changed, *value[1:], None]}


def _others(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value, 0, 1, "yes"]
    if isinstance(value, int):
        return [0, str(value), True, 2**70]
    if isinstance(value, str):
        return ["", 5, b"bytes", 1.5]
    if isinstance(value, list):
        return [[], tuple(value)]
    if isinstance(value, dict):
        return [{}, list(value.items())] if all(isinstance(key, str) for key in value) else [{}]
    return []


# --- (a) the compiled dump is marshmallow's -------------------------------------------------


@pytest.mark.parametrize("shape", ANSWERS, ids=lambda shape: shape.__name__)
def test_every_answer_is_compiled(shape):
    schema = shape()

    assert dumping.dumper(schema) != schema.dump


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_a_shape_dumps_as_marshmallow_does(shape, documents):
    schema = shape()
    assert documents[shape]

    for document in documents[shape]:
        for changed in variants(schema, document):
            assert_dumps_alike(schema, changed)


def test_the_stored_profiles_dump_as_marshmallow_does(stored):
    schema = schemas.UserProfile()
    assert any(profile.get("ReasonCode") for profile in stored)
    assert any(profile["Consents"] and profile["ProfilePreferences"] for profile in stored)

    for profile in stored:
        assert_dumps_alike(schema, profile)
    assert text(dumping.dump(schema, stored, many=True)) == text(schema.dump(stored, many=True))


def test_a_list_or_none_dumps_as_marshmallow_does():
    schema = schemas.Tag()
    entries = [{"Name": "a"}, {}, {"Name": None}]

    assert dumping.dump(schema, entries, many=True) == schema.dump(entries, many=True)
    assert dumping.dump(schema, None, many=True) == schema.dump(None, many=True)
    assert dumping.dump(schema, None) == schema.dump(None)
    many = schemas.Tag(many=True)
    assert dumping.dumper(many) == many.dump


class Quirks(Schema):
    """What marshmallow does beyond the contract's shapes, kept by the compiled dump."""

    Renamed = fields.String(attribute="source")
    Keyed = fields.Integer(data_key="key")
    Dotted = fields.String(attribute="outer.inner")
    Constant = fields.String(dump_default="constant")
    Called = fields.List(fields.Integer(), dump_default=lambda: [1, 2])
    Method = fields.String(attribute="keys")  # a dict's own method, which get_value finds
    Ratio = fields.Float()
    Counted = fields.Integer(as_string=True)
    Anything = fields.Raw()
    Mapping = fields.Dict()
    Grid = fields.List(fields.List(fields.Integer(allow_none=True)))
    Words = fields.List(fields.String())
    Name = fields.Nested(schemas.CustomerName, allow_none=True)


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"source": 5, "Keyed": "12", "outer": {"inner": 1}, "Constant": None, "Called": ["3"], "keys": "own"},
        {"Ratio": 3, "Counted": "4", "Anything": object, "Mapping": [("a", 1)], "Grid": [[1, None], [True]]},
        {"Words": [None, 1, b"x"], "Name": None, "outer": SimpleNamespace(inner="from an object")},
        {"Name": {"FirstName": "Ann"}, "Grid": None, "Words": (), "Ratio": None, "Counted": None},
    ],
)
def test_marshmallows_quirks_are_kept(document):
    schema = Quirks()

    assert dumping.dumper(schema) != schema.dump
    assert_dumps_alike(schema, document)
    assert_dumps_alike(schema, SimpleNamespace(**document))


# --- (b) what the compiler does not know dumps through marshmallow --------------------------


class Loud(fields.String):
    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value).upper()


class Hooked(schemas.Wire):
    Name = fields.String()

    @post_dump
    def _add(self, data: dict, **kwargs: Any) -> dict:
        return data | {"Added": True}


class Prepared(schemas.Wire):
    Name = fields.String()

    @pre_dump
    def _prepare(self, data: dict, **kwargs: Any) -> dict:
        return {"Name": "prepared"}


class OwnOmission(schemas.Wire):
    omitted_when_empty = ("Name",)
    Name = fields.String()

    @post_dump
    def _omit_what_is_empty(self, data: dict, **kwargs: Any) -> dict:
        return {key: value for key, value in data.items() if value != "drop"}


class Accessed(schemas.Wire):
    Name = fields.String()

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        return "always"


FALLBACKS = {
    "post_dump": Hooked,
    "pre_dump": Prepared,
    "overridden hook": OwnOmission,
    "get_attribute": Accessed,
    "_serialize": type("Shouted", (schemas.Wire,), {"Name": Loud()}),
    "DateTime": type("Stamped", (schemas.Wire,), {"At": fields.DateTime()}),
    "Method": type(
        "Computed", (schemas.Wire,), {"Upper": fields.Method("upper"), "upper": lambda self, obj: 1}
    ),
    "many Nested": type("Tagged", (schemas.Wire,), {"Tags": fields.Nested(schemas.Tag, many=True)}),
    "unknown Nested": type("Dangling", (schemas.Wire,), {"Other": fields.Nested("NoSuchShape")}),
}


@pytest.mark.parametrize("shape", FALLBACKS.values(), ids=FALLBACKS.keys())
def test_a_schema_the_compiler_does_not_know_dumps_through_marshmallow(shape):
    schema = shape()
    document = {"Name": "drop", "At": None, "Upper": None, "Tags": [{"Name": "t"}], "Message": "m"}

    assert dumping.dumper(schema) == schema.dump
    assert dumping.dump(schema, document) == schema.dump(document)


def test_a_typed_dict_is_compiled_and_converts_each_key_and_value_as_marshmallow_does():
    class Counted(schemas.Wire):
        Counts = fields.Dict(keys=fields.String(), values=fields.Integer())
        Names = fields.Dict(values=fields.String(allow_none=True))
        Ids = fields.Dict(keys=fields.Integer())

    schema = Counted()

    assert dumping.dumper(schema) != schema.dump
    assert_dumps_alike(
        schema,
        {"Counts": {"a": 1, 2: "3", "b": 4.0}, "Names": {"x": None, "y": 5}, "Ids": {"1": "a", 1: "b"}},
    )
    assert_dumps_alike(schema, {"Counts": None, "Names": {}, "Ids": None})
    assert_dumps_alike(schemas.Error(), {"Message": "m", "ModelState": {"Name": ["Required."]}})


def test_a_nested_schema_it_does_not_know_dumps_through_marshmallow_inside_a_compiled_one():
    class Holder(schemas.Wire):
        Inner = fields.Nested(Hooked)
        Entries = schemas.collection(Hooked, "Hooked")

    schema = Holder()

    assert dumping.dumper(schema) != schema.dump
    assert_dumps_alike(schema, {"Inner": {"Name": "a"}, "Entries": [{"Name": "b"}, None]})


def test_a_schema_nested_in_itself_is_compiled_once():
    class Node(schemas.Wire):
        Name = fields.String()
        Child = fields.Nested(lambda: Node(), allow_none=True)

    schema = Node()

    assert dumping.dumper(schema) != schema.dump
    assert_dumps_alike(schema, {"Name": "a", "Child": {"Name": "b", "Child": {"Name": "c", "Child": None}}})


# --- (c) JSON on the wire -------------------------------------------------------------------


def test_a_json_body_is_compact_and_the_same_document(served, tenant, stored):
    schema = schemas.UserProfile()

    for profile in stored:
        response = send("GET", f"{served.url}/{tenant}/Profile/{profile['ProfileId']}")

        assert response.status_code == 200, response.text
        assert response.content == compact(schema.dump(profile))
        assert text(response.json()) == text(schema.dump(profile))
        assert b'":' in response.content
        assert b'": ' not in response.content


def test_an_error_body_is_compact(profile_url):
    response = send("GET", f"{profile_url}/99999999")

    assert response.status_code == 404
    assert response.content == compact(response.json())


@pytest.mark.parametrize(
    "data",
    [
        {"Text": "".join(map(chr, range(128))) + "é😀\u2028\u2029\ufffe", "List": [1, -1.5, True, None, {}]},
        {"Huge": 2**64, "Negative": -(2**63) - 1},  # beyond orjson's 64 bits: json writes it
        {1: "a key that is not a string"},  # orjson refuses it, json writes it as a string
    ],
    ids=["text", "huge", "key"],
)
def test_json_is_rendered_as_compact_json_does(data):
    assert formats.render(data, "application/json") == compact(data)
