"""Marshmallow dumps compiled into plain functions: the schemas stay the contract, the dump gets fast."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import ensure_text_type, get_value

from ..contract.schemas import Wire

Dump = Callable[[Any], Any]

# Per schema instance: its compiled dump of one object, or None when it dumps through marshmallow.
# The compiled code holds no reference to the schema it was compiled from (only, at most, to schemas
# nested in it), so an entry goes when its schema does.
_compiled: weakref.WeakKeyDictionary[Schema, Dump | None] = weakref.WeakKeyDictionary()


class Uncompilable(Exception):
    """A schema, or a part of it, that the compiler cannot reproduce exactly."""


def dumper(schema: Schema) -> Dump:
    """A function that dumps as ``schema.dump`` does; ``schema.dump`` itself when it cannot be compiled."""
    one = _dump_of(schema)
    # A schema of many objects keeps its own dump: ``dump`` maps the compiled one over a list.
    return schema.dump if one is None or schema.many else one


def dump(schema: Schema, data: Any, *, many: bool | None = None) -> Any:
    """``schema.dump(data, many=many)``, through the compiled dump when ``schema`` has one."""
    many = schema.many if many is None else bool(many)
    one = _dump_of(schema)
    if one is None or (many and data is None):
        return schema.dump(data, many=many)
    return [one(item) for item in data] if many else one(data)


def _dump_of(schema: Schema, compiling: tuple[type, ...] = ()) -> Dump | None:
    """``schema``'s compiled dump of one object (None: it has none), compiled on first need."""
    try:
        return _compiled[schema]
    except KeyError:
        pass
    try:
        one: Dump | None = _compile(schema, compiling)
    except Uncompilable:
        one = None
    _compiled[schema] = one
    return one


# --- the compiler ---------------------------------------------------------------------------
# It compiles what marshmallow 4 does in Schema.dump: Schema._serialize (each dump field's
# serialize, in dump_fields' order, a missing value's key left out) and then the post_dump hooks.
# Every method it reproduces is checked to be marshmallow's own, not an override, so that anything
# else (another hook, a field class it does not know, an overridden _serialize) is refused, and
# that schema dumps through marshmallow.

# marshmallow's own methods, each a step the compiled code reproduces.
_SCHEMA_METHODS = ("dump", "_serialize", "get_attribute", "_invoke_dump_processors", "_invoke_processors")
_FIELD_METHODS = ("serialize", "get_value")


def _own(owner: Any, base: type, names: tuple[str, ...]) -> bool:
    """Whether ``owner``'s class uses ``base``'s own methods ``names``."""
    return all(getattr(type(owner), name, None) is getattr(base, name) for name in names)


def _omit_what_is_empty(schema: Schema) -> frozenset[str]:
    # Wire's hook drops each of these keys whose value is falsy: the compiled code does not write it.
    return frozenset(getattr(schema, "omitted_when_empty", ()))


# The post_dump hooks the compiler knows, each by the function, with what it makes of a schema.
_KNOWN_POST_DUMPS: dict[Callable[..., Any], Callable[[Schema], frozenset[str]]] = {
    Wire._omit_what_is_empty: _omit_what_is_empty,
}


def _compile(schema: Schema, compiling: tuple[type, ...]) -> Dump:
    """``schema``'s dump of one object as one function, or Uncompilable."""
    if not _own(schema, Schema, _SCHEMA_METHODS) or schema.dict_class is not dict:
        raise Uncompilable(type(schema))
    if schema._hooks.get(PRE_DUMP):
        raise Uncompilable(type(schema))
    omitted: frozenset[str] = frozenset()
    for name, pass_collection, options in schema._hooks.get(POST_DUMP, ()):
        known = _KNOWN_POST_DUMPS.get(getattr(type(schema), name, None))  # type: ignore[arg-type]
        if known is None or pass_collection or options.get("pass_original"):
            raise Uncompilable(type(schema), name)
        omitted |= known(schema)
    compiler = _Compiler((*compiling, type(schema)))
    lines = [
        "def dump(obj):",
        # Schema.get_attribute is utils.get_value, which reads a dict by its keys.
        "    get = obj.get if type(obj) is dict else partial(get_value, obj)",
        "    out = {}",
    ]
    keys: set[str] = set()
    for attr_name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else attr_name
        if key in keys:  # a later field overwrites an earlier one's value, in its place
            raise Uncompilable(type(schema), key)
        keys.add(key)
        lines += compiler.field(attr_name, field, key, key in omitted)
    lines.append("    return out")
    return compiler.function("\n".join(lines))


class _Compiler:
    """The source of one schema's dump, and the names that source refers to."""

    def __init__(self, compiling: tuple[type, ...]) -> None:
        self.compiling = compiling  # the schema classes being compiled: a nested one is not recompiled
        self.names: dict[str, Any] = {
            "M": missing,
            "partial": partial,
            "get_value": get_value,
            "text": _text,
            "number": _number,
        }

    def function(self, source: str) -> Dump:
        namespace = dict(self.names)
        # The source is built above from the schema's names (as repr literals) and these names only.
        exec(compile(source, "<dumping>", "exec"), namespace)
        return namespace["dump"]

    def name(self, value: Any) -> str:
        """A name in the compiled code for ``value``."""
        name = f"_{len(self.names)}"
        self.names[name] = value
        return name

    def field(self, attr_name: str, field: fields.Field, key: str, omitted_when_empty: bool) -> list[str]:
        """The lines that write ``field``'s key, as ``Field.serialize`` does with marshmallow's accessor."""
        if not _own(field, fields.Field, _FIELD_METHODS) or not field._CHECK_ATTRIBUTE:
            raise Uncompilable(field)
        attribute = attr_name if field.attribute is None else field.attribute
        if "." in attribute:  # a path, which get_value walks
            lines = [f"    v = get_value(obj, {attribute!r}, M)"]
        else:
            lines = [f"    v = get({attribute!r}, M)"]
            if hasattr(dict, attribute):
                # get_value falls back to getattr, which finds a dict's own methods (items, keys...).
                lines.append(f"    if v is M: v = getattr(obj, {attribute!r}, M)")
        default = field.dump_default
        if default is not missing:
            call = "()" if callable(default) else ""
            lines.append(f"    if v is M: v = {self.name(default)}{call}")
        converted = self.value(field, "v", 0)
        lines.append("    if v is not M:")
        if omitted_when_empty:
            lines += [f"        v = {converted}", f"        if v: out[{key!r}] = v"]
        else:
            lines.append(f"        out[{key!r}] = {converted}")
        return lines

    def value(self, field: fields.Field, var: str, depth: int) -> str:
        """An expression of ``var`` converted by ``field._serialize``."""
        serialize = type(field)._serialize
        if serialize is fields.Field._serialize:  # Raw, and Boolean in marshmallow 4: as it is
            return var
        if serialize is fields.String._serialize:
            return f"({var} if type({var}) is str else text({var}))"
        if serialize is fields.Number._serialize:
            return self._number(field, var)
        if serialize is fields.Mapping._serialize:
            return self._mapping(field, var, depth)
        if serialize is fields.Nested._serialize:
            return f"(None if {var} is None else {self._nested(field)}({var}))"  # type: ignore[arg-type]
        if serialize is fields.List._serialize:
            each = f"e{depth}"
            inner = self.value(field.inner, each, depth + 1)  # type: ignore[attr-defined]
            return f"(None if {var} is None else [{inner} for {each} in {var}])"
        raise Uncompilable(field)

    def _mapping(self, field: fields.Field, var: str, depth: int) -> str:
        """Mapping._serialize: the mapping copied, or each key and each value converted by its field."""
        mapping = self.name(field.mapping_type)  # type: ignore[attr-defined]
        keys, values = field.key_field, field.value_field  # type: ignore[attr-defined]
        if keys is None and values is None:
            return f"(None if {var} is None else {mapping}({var}))"
        key, value = f"k{depth}", f"e{depth}"
        # A later key that converts to an earlier one's overwrites it, as the loop of Mapping does.
        converted_key = key if keys is None else self.value(keys, key, depth + 1)
        converted_value = value if values is None else self.value(values, value, depth + 1)
        pairs = f"{{{converted_key}: {converted_value} for {key}, {value} in {var}.items()}}"
        return f"(None if {var} is None else {mapping}({pairs}))"

    def _number(self, field: fields.Field, var: str) -> str:
        own = _own(field, fields.Number, ("_format_num", "_to_string"))
        kind = getattr(field, "num_type", None)
        if not own or kind not in (int, float):
            raise Uncompilable(field)
        if getattr(field, "as_string", False):
            return f"(None if {var} is None else str({kind.__name__}({var})))"
        return f"({var} if type({var}) is {kind.__name__} else number({kind.__name__}, {var}))"

    def _nested(self, field: fields.Nested) -> str:
        """The name of the function that dumps one object of ``field``'s schema."""
        try:
            schema = field.schema
        except Exception as error:  # one it cannot resolve: marshmallow fails only when it dumps one
            raise Uncompilable(field) from error
        if field.many or schema.many:
            raise Uncompilable(field)
        # Its own dump, called as Nested._serialize calls it, where it cannot be compiled: the rest
        # stays compiled. So is a schema nested in itself, which would otherwise compile forever.
        fallback = partial(schema.dump, many=False)
        if type(schema) in self.compiling:
            return self.name(fallback)
        one = _dump_of(schema, self.compiling)
        return self.name(fallback if one is None else one)


def _text(value: Any) -> str | None:
    # String._serialize for a value that is not already a str.
    return None if value is None else ensure_text_type(value)


def _number(kind: type, value: Any) -> Any:
    # Number._serialize (as_string false) for a value not already of its type.
    return None if value is None else kind(value)
