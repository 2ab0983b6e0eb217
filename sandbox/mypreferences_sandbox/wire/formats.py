"""The wire: JSON and XML bodies in and out, and content negotiation.

This is the only module that touches dicttoxml and defusedxml. XML is read and written under the
guidance of the marshmallow schemas (see ``schemas``): a schema says which elements are collections,
what one entry is called, and in which order the vendor writes and reads elements.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import dicttoxml
import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from marshmallow import Schema, fields
from werkzeug.datastructures import MIMEAccept

from ..contract import schemas
from ..contract.errors import BadRequest, NotAcceptable, UnsupportedMediaType, invalid

JSON_TYPES = ("application/json", "text/json", "application/json-patch+json")
XML_TYPES = ("application/xml", "text/xml")
MEDIA_TYPES = JSON_TYPES + XML_TYPES
NAMESPACE = schemas.NAMESPACE
INSTANCE_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
NIL = f"{{{INSTANCE_NAMESPACE}}}nil"
CHARSETS = ("utf-8", "utf8", "us-ascii")

# dicttoxml logs every step of every call at INFO.
logging.getLogger("dicttoxml").setLevel(logging.WARNING)


@dataclass
class Body:
    """A request body read off the wire, as the vendor's stack reads it: its data, and warnings of
    what that stack does quietly (fields it ignores, values it converts, XML elements it skips)."""

    data: Any
    warnings: list[str] = field(default_factory=list)
    # A JSON body as parsed, before it is read into a schema (which copies what it converts): its
    # parsed form, for the journal, without parsing it again. None for XML.
    document: Any = None


def is_xml(media_type: str | None) -> bool:
    """Whether a media type (as negotiated or sent) is one of the XML ones."""
    return media_type in XML_TYPES


def read_body(
    raw: bytes, mimetype: str, charset: str | None, schema: Schema | None, root: str, max_depth: int
) -> Body:
    """Parse a request body of a supported media type into data shaped as the JSON samples: JSON as
    Json.NET reads it into ``schema``, XML as DataContractSerializer does.

    Without a ``schema`` (a JSON Patch document) the body is read as JSON only, and nothing is
    converted or reported."""
    if mimetype not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"The request entity's media type '{mimetype}' is not supported for this resource."
            if mimetype
            else "The request contains an entity body but no Content-Type header. The inferred "
            "media type 'application/octet-stream' is not supported for this resource."
        )
    if charset and charset.lower() not in CHARSETS:
        raise UnsupportedMediaType(f"The charset '{charset}' is not supported; send UTF-8.")
    if not raw.strip():
        raise invalid("body", "A non-empty request body is required.")
    if is_xml(mimetype):
        if schema is None:
            raise UnsupportedMediaType(
                "The sandbox reads JSON Patch documents as JSON only; send application/json-patch+json."
            )
        return _read_xml(raw, schema, root, max_depth)
    return _read_json(raw, schema, max_depth)


def _read_json(raw: bytes, schema: Schema | None, max_depth: int) -> Body:
    data = parse_json(raw, max_depth)
    if schema is None:
        return Body(data, document=data)
    body = Body(None, document=data)
    body.data = _json_object(data, schema, "", body.warnings)
    return body


def parse_json(raw: bytes, max_depth: int) -> Any:
    """A JSON document from UTF-8 bytes; any fault of the client's (syntax, encoding, nesting,
    a number too long to convert) is a 400 under ``body``."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=schemas.reject_constant)
    except UnicodeDecodeError as error:
        raise invalid("body", f"The body is not valid UTF-8: {error.reason}.") from None
    except RecursionError:
        raise too_deep(max_depth) from None
    except json.JSONDecodeError as error:
        raise invalid("body", f"The body is not valid JSON: {error}.") from None
    except ValueError:  # an integer beyond Python's digit limit
        raise too_long_number() from None
    check_json(data, max_depth)
    return data


def too_long_number() -> BadRequest:
    """The 400 of a number with more digits than Python converts."""
    return invalid("body", f"The body holds a number of more than {sys.get_int_max_str_digits()} digits.")


def too_deep(max_depth: int) -> BadRequest:
    """The 400 of a document nested deeper than ``max_depth``."""
    return invalid("body", f"The body is nested more than {max_depth} levels deep.")


# A UTF-16 code unit of a surrogate pair, alone: json.loads joins escaped pairs into one character.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def check_json(data: Any, max_depth: int, depth: int = 1) -> None:
    """400 for a document nested deeper than ``max_depth``, or holding a lone surrogate
    (``"\\ud800"``): .NET would carry one in a string, but no UTF-8 answer can, so the sandbox
    refuses it rather than store what it could never give back."""
    stack = [(data, depth)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise too_deep(max_depth)
        if isinstance(value, str) and LONE_SURROGATE.search(value):
            raise invalid(
                "body", "The body holds a lone UTF-16 surrogate (\\uD800-\\uDFFF), which is not text."
            )
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for pair in value.items() for child in pair)
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)


def _json_object(data: Any, schema: Schema, path: str, warnings: list[str]) -> Any:
    """``data`` as Json.NET reads it into ``schema``'s type: its values converted where Json.NET
    converts them, and its unknown fields noted (the vendor ignores them; the schema excludes them)."""
    if not isinstance(data, Mapping):
        return data  # not an object: the schema reports the type
    read: dict[str, Any] = {}
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        names, read_only = _names_ignoring_case(schema)
        name = key if key in schema.fields else names.get(_ordinal_upper(key))
        if name is None:
            warnings.append(_ignored(here, _ordinal_upper(key) in read_only))
            read[key] = value
            continue
        if name != key:
            warnings.append(f"read '{here}' as '{name}' (Json.NET matches a property's name ignoring case)")
        converted = _json_value(value, schema.fields[name], f"{path}.{name}" if path else name, warnings)
        read[name] = _populated(read[name], converted) if name in read else converted
    return read


def _populated(existing: Any, value: Any) -> Any:
    """A property Json.NET meets again (under another case): a scalar is set again; an object or a
    list it already holds is filled in, as ObjectCreationHandling.Auto reuses an existing value:
    the object's properties set in turn, the list's entries appended."""
    if isinstance(existing, dict) and isinstance(value, dict):
        filled = dict(existing)
        for key, item in value.items():
            filled[key] = _populated(filled[key], item) if key in filled else item
        return filled
    if isinstance(existing, list) and isinstance(value, list):
        return existing + value
    return value


def _ordinal_upper(text: str) -> str:
    """``text`` as .NET's OrdinalIgnoreCase compares it: each character upper-cased alone (Python's
    upper turns some into two, such as 'ß' into 'SS', which .NET leaves as they are)."""
    return "".join(upper if len(upper := character.upper()) == 1 else character for character in text)


def _names_ignoring_case(schema: Schema) -> tuple[dict[str, str], frozenset[str]]:
    """A schema's field names by their ordinal upper case, what Json.NET binds a property name to
    when no property has that name exactly (JsonPropertyCollection.GetClosestMatchProperty); and
    its read-only names, upper-cased alike."""
    found = _closest.get(type(schema))
    if found is None:
        names = {_ordinal_upper(name): name for name in schema.fields}
        read_only = frozenset(_ordinal_upper(name) for name in getattr(schema, "read_only", ()))
        found = _closest[type(schema)] = (names, read_only)
    return found


# Per schema class, made once (each schema's fields are fixed): see _names_ignoring_case.
_closest: dict[type, tuple[dict[str, str], frozenset[str]]] = {}


def _json_value(value: Any, known: fields.Field, path: str, warnings: list[str]) -> Any:
    if isinstance(known, fields.Nested):
        return _json_object(value, known.schema, path, warnings)
    if isinstance(known, fields.List) and isinstance(known.inner, fields.Nested) and isinstance(value, list):
        schema = known.inner.schema
        return [
            _json_object(entry, schema, f"{path}[{index}]", warnings) for index, entry in enumerate(value)
        ]
    if isinstance(known, schemas.Flag):
        converted: bool | str | None = _as_boolean(value)
    elif isinstance(known, schemas.Text):
        converted = _as_string(value)
    else:
        return value
    if converted is None:
        return value  # already of its type, or refused: the schema reports the type
    warnings.append(f"converted {json.dumps(value)} to {json.dumps(converted)} for '{path}'")
    return converted


# The vendor's JSON reader is taken to be Json.NET 6, the version ASP.NET Web API 2 ships with (the
# sandbox's type errors use its words). It converts a JSON value of another type through .NET's
# Convert and ToString; the two functions below give the conversions that succeed.
INT64 = range(-schemas.INT64_MAX - 1, schemas.INT64_MAX + 1)


def _as_boolean(value: Any) -> bool | None:
    """A JSON string or number where .NET wants a bool, converted as Json.NET does; None otherwise.

    A string is read by ``bool.Parse`` ("true" or "false" in any case, white space around); a number
    by ``Convert.ToBoolean`` (non-zero is true), an integer only within Int64, as Json.NET converts
    a larger one (a BigInteger) to Int64 first."""
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value != 0 if value in INT64 else None
    if isinstance(value, float) and math.isfinite(value):
        return value != 0
    return None


def _as_string(value: Any) -> str | None:
    """A JSON boolean or number where .NET wants a string, as Json.NET writes it; None otherwise.

    Json.NET reads the value first and writes it with .NET's ``ToString`` in the invariant culture:
    ``True``/``False``; an integer with all its digits; a double as .NET Framework's "G" format does,
    15 significant digits, ``E+XX`` from 1E+15 and below 1E-04, and never ``-0``."""
    if isinstance(value, bool | int):
        return str(value)  # Python writes both as .NET does
    if isinstance(value, float) and math.isfinite(value):
        return format(value + 0.0, ".15g").upper()  # + 0.0 turns -0.0 into 0.0
    return None


def _ignored(path: str, read_only: bool = False) -> str:
    return f"ignored {'read-only' if read_only else 'unknown'} field '{path}'"


def _read_xml(raw: bytes, schema: Schema, root: str, max_depth: int) -> Body:
    try:
        element = fromstring(raw, forbid_dtd=True)
    except DefusedXmlException:
        raise invalid("body", "DTDs and entity declarations are not allowed.") from None
    except (ParseError, ValueError, LookupError) as error:  # LookupError: an unknown encoding
        raise invalid("body", f"The body is not well-formed XML: {error}.") from None
    if _xml_depth(element) > max_depth:
        raise too_deep(max_depth)
    expected = _namespace(schema)
    if element.tag != f"{{{expected}}}{root}":
        namespace, _, name = element.tag.lstrip("{").rpartition("}")
        raise invalid(
            "body",
            f"Expecting element '{root}' from namespace '{expected}'. "
            f"Encountered element '{name}' from namespace '{namespace}'.",
        )
    body = Body(None)
    body.data = _xml_object(element, schema, "", body.warnings)
    return body


def _xml_depth(root: Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest


def _local_name(element: Element) -> str:
    return element.tag.rpartition("}")[2]


def _namespace(schema: Schema) -> str:
    """The XML namespace of a data contract (the vendor's, unless the shape says otherwise)."""
    return getattr(schema, "xml_namespace", NAMESPACE)


def _known_name(element: Element, namespace: str) -> str | None:
    """The element's name when it is in the data contract's namespace; others are unknown to it."""
    return _local_name(element) if element.tag.startswith(f"{{{namespace}}}") else None


def _xml_object(element: Element, schema: Schema, path: str, warnings: list[str]) -> dict | str:
    """``element`` read as DataContractSerializer reads a data contract: in document order, moving
    forward through the members in their declared order, so that an element whose member is not
    ahead of the last one read (out of order, or repeated) is skipped, as is an unknown element."""
    if len(element) == 0 and (element.text or "").strip():
        return element.text or ""  # text where an object belongs: the schema reports the type
    order = _member_order(schema)
    data: dict[str, Any] = {}
    position = -1  # the declared position of the last member read
    for child in element:
        name = _known_name(child, _namespace(schema))
        here = f"{path}.{_local_name(child)}" if path else _local_name(child)
        known = schema.fields.get(name) if name else None
        if name is None or known is None:
            warnings.append(_ignored(here, name in getattr(schema, "read_only", ())))
        elif order[name] <= position:
            warnings.append(_skipped(here, repeated=name in data))
        else:
            position = order[name]
            data[name] = _xml_value(child, known, here, warnings, _namespace(schema))
    return data


def _member_order(schema: Schema) -> dict[str, int]:
    """Each member's declared position: a schema's ``xml_order`` (the vendor's XML sample), else
    DataContract's default order, by element name in ordinal order."""
    names = getattr(schema, "xml_order", ()) or sorted(schema.fields)
    return {name: index for index, name in enumerate(names)}


def _skipped(path: str, repeated: bool) -> str:
    reason = (
        "repeated (DataContractSerializer reads each member once, in declared order)"
        if repeated
        else "out of order (DataContractSerializer reads members in declared order)"
    )
    return f"skipped XML element '{path}': {reason}"


def _xml_value(element: Element, known: fields.Field, path: str, warnings: list[str], namespace: str) -> Any:
    if element.get(NIL, "").strip() in ("true", "1"):
        return None
    if isinstance(known, fields.Nested):
        return _xml_object(element, known.schema, path, warnings)
    if isinstance(known, fields.List):
        return _xml_list(element, known, path, warnings, namespace)
    if len(element):
        return {}  # elements where text belongs: the schema reports the type
    text = element.text or ""
    if isinstance(known, fields.Boolean):
        return {"true": True, "1": True, "false": False, "0": False}.get(text.strip(), text)
    return text


def _xml_list(
    element: Element, known: fields.List, path: str, warnings: list[str], namespace: str
) -> list | str:
    if len(element) == 0 and (element.text or "").strip():
        return element.text or ""  # text where a collection belongs: the schema reports the type
    item = known.metadata["xml_item"]
    entries: list[Any] = []
    for child in element:
        if _known_name(child, namespace) == item:
            here = f"{path}[{len(entries)}]"
            entries.append(_xml_value(child, known.inner, here, warnings, namespace))
        else:
            warnings.append(_ignored(f"{path}.{_local_name(child)}"))
    return entries


# --- negotiation ----------------------------------------------------------------------------


def negotiate(accept: MIMEAccept, request_type: str | None) -> str:
    """The response media type: what Accept asks for; for */* or none, the request's own."""
    fallback = request_type if request_type in MEDIA_TYPES else "application/json"
    if fallback == "application/json-patch+json":
        fallback = "application/json"
    if not accept:
        return fallback
    offers = [fallback, *(media for media in MEDIA_TYPES if media != fallback)]
    chosen = accept.best_match(offers)
    if chosen is None:
        raise NotAcceptable(
            f"None of the media types in Accept '{accept}' is supported; use one of {', '.join(MEDIA_TYPES)}."
        )
    return chosen


# --- a body's parsed form, whatever its shape ---


def parsed_form(raw: bytes, media_type: str | None, max_depth: int) -> tuple[Any, str | None]:
    """A body's parsed form by its media type, and None; or None and why it has none (``malformed``,
    ``not JSON or XML``), for the journal and body matchers: JSON as the vendor's endpoints read
    it; XML in a simple form, whatever its root."""
    try:
        if media_type in JSON_TYPES:
            return parse_json(raw, max_depth), None
        if media_type in XML_TYPES:
            return _xml_form(raw, max_depth), None
    except BadRequest:
        return None, "malformed"
    return None, "not JSON or XML"


def _xml_form(raw: bytes, max_depth: int) -> dict[str, Any]:
    """An XML document in its simple form: ``{root: content}``, where an element's content is its
    text when it has no child elements, else its children by name (namespaces and attributes
    dropped), a name that occurs more than once holding the list of their contents, in order.
    BadRequest, as ``parse_json`` raises it, if it is not well-formed, declares a DTD, or nests
    deeper than ``max_depth``."""
    try:
        root = fromstring(raw, forbid_dtd=True)
    except (DefusedXmlException, ParseError, ValueError, LookupError):
        raise BadRequest("The body is not well-formed XML, or declares a DTD.") from None
    return {_name(root): _content(root, max_depth - 1)}


def _content(element: Element, depth_left: int) -> Any:
    if len(element) == 0:
        return element.text or ""
    if depth_left == 0:
        raise BadRequest("The body is nested too deeply.")
    content: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in element:
        name, value = _name(child), _content(child, depth_left - 1)
        if name in repeated:
            content[name].append(value)
        elif name in content:
            content[name] = [content[name], value]
            repeated.add(name)
        else:
            content[name] = value
    return content


def _name(element: Element) -> str:
    return element.tag.rpartition("}")[2]


# --- writing --------------------------------------------------------------------------------


def render(data: Any, media_type: str, schema: Schema | None = None, root: str = "", item: str = "") -> bytes:
    """A body in ``media_type``: JSON as given; XML laid out by ``schema`` under ``root`` (each
    entry of a list named ``item``), or, without a schema, ASP.NET's XML error document."""
    if not is_xml(media_type):
        # Compact, no space after ":" or ",": the vendor's ASP.NET Web API writes through Json.NET,
        # whose default is Formatting.None (inferred; the vendor documents no response bytes).
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError:
            # What orjson refuses (an integer beyond 64 bits, a key that is not a string), json
            # writes in the same compact form; a lone surrogate, which no UTF-8 can carry, still fails.
            return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if schema is None:
        return _xml_document("Error", _error_tree(data), {})
    items: dict[str, str] = {"": item}  # dicttoxml names a top-level list's parent ""
    if isinstance(data, list):
        tree: Any = [_xml_tree(entry, schema, items) for entry in data]
    else:
        tree = _xml_tree(data, schema, items)
    namespaces = {"xmlns:i": INSTANCE_NAMESPACE, "xmlns": NAMESPACE}
    return _xml_document(root, tree, namespaces, items)


def _xml_tree(data: Mapping, schema: Schema, items: dict[str, str]) -> dict:
    """Reorder and rename ``data`` (JSON shape) into the vendor's XML layout, noting entry names."""
    tree: dict[str, Any] = {}
    # Members in the order they are read: a shape's sample order, else DataContract's default.
    for key in _member_order(schema):
        if key not in data:
            continue
        known, value = schema.fields[key], data[key]
        name = known.metadata.get("xml_name", key)
        if isinstance(known, fields.Nested) and value is not None:
            value = _xml_tree(value, known.schema, items)
        elif isinstance(known, fields.List) and isinstance(known.inner, fields.Nested) and value is not None:
            items[name] = known.metadata["xml_item"]
            value = [_xml_tree(entry, known.inner.schema, items) for entry in value]
        elif "xml_names" in known.metadata:
            value = known.metadata["xml_names"].get(value, value)  # enums: names in XML
        tree[name] = value
    return tree


def _error_tree(body: Mapping) -> dict:
    """ASP.NET's HttpError in XML: ModelState keys become element names, encoded like XmlConvert."""
    tree: dict[str, Any] = {"Message": body["Message"]}
    if "ModelState" in body:
        tree["ModelState"] = {
            _xml_name(key): " ".join(messages) for key, messages in body["ModelState"].items()
        }
    return tree


def _xml_name(key: str) -> str:
    """``XmlConvert.EncodeLocalName``: characters not allowed in a name become ``_xHHHH_``."""
    encoded = re.sub(r"[^A-Za-z0-9._-]", lambda match: f"_x{ord(match[0]):04X}_", key)
    return encoded if re.match(r"[A-Za-z_]", encoded) else f"_x{ord(encoded[0]):04X}_{encoded[1:]}"


# Characters XML 1.0 cannot carry, even escaped (C0 controls but tab, newline, carriage return).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(value: Any) -> Any:
    """``value`` with every string's XML-illegal characters replaced by U+FFFD, so the document
    stays well-formed whatever a JSON client stored."""
    if isinstance(value, str):
        return XML_ILLEGAL.sub("\ufffd", value)
    if isinstance(value, dict):
        return {key: _xml_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_xml_safe(item) for item in value]
    return value


def _xml_document(
    root: str, tree: dict | list, namespaces: Mapping[str, str], items: Mapping[str, str] | None = None
) -> bytes:
    entry_names = items or {}
    inner = dicttoxml.dicttoxml(
        _xml_safe(tree), root=False, attr_type=True, item_func=lambda parent: entry_names.get(parent, "item")
    ).decode("utf-8")
    # attr_type marks every element with its type; keep only null, as the nil DataContract writes.
    # Text is escaped (quotes included), so these patterns can only meet tags.
    inner = re.sub(r'<([\w.\-]+) type="null"></\1>', r'<\1 i:nil="true" />', inner)
    inner = re.sub(r' type="(?:str|int|float|number|bool|dict|list)"', "", inner)
    attributes = "".join(f' {name}="{value}"' for name, value in namespaces.items())
    if "i:nil" in inner and "xmlns:i" not in namespaces:
        attributes += f' xmlns:i="{INSTANCE_NAMESPACE}"'
    return f"<{root}{attributes}>{inner}</{root}>".encode()
