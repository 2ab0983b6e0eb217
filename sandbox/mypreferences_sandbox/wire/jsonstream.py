"""A state document too large to parse whole, read as it arrives.

Its outer object, its ``clients`` object and each client's array are walked here; every value
inside them (one profile, an account, another member) is parsed whole by ``formats.parse_json``'s
own rules, so a streamed document is read exactly as a body is: the same JSON, the same 400s.
Only one profile at a time, and the text not yet read, are held.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from ..contract.errors import BadRequest, invalid
from ..contract.schemas import reject_constant
from ..turns import pace
from .formats import check_json, too_deep, too_long_number

# How much of the stream is read at once; a value longer than that is read in doubling steps.
CHUNK = 1 << 20
WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_constant=reject_constant)


class _Text:
    """A byte stream's text, decoded from UTF-8 as it is read, and a cursor in it."""

    def __init__(self, stream: IO[bytes], max_depth: int) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._ended = False
        self.text = ""
        self.at = 0
        self.max_depth = max_depth

    def _more(self, size: int) -> None:
        """Read up to ``size`` more bytes, dropping the text already walked."""
        pace()
        raw = self._stream.read(size)
        self._ended = not raw
        try:
            decoded = self._decoder.decode(raw, final=self._ended)
        except UnicodeDecodeError as error:
            raise invalid("body", f"The body is not valid UTF-8: {error.reason}.") from None
        self.text = self.text[self.at :] + decoded
        self.at = 0

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), not taken."""
        while True:
            self.at = WHITESPACE.match(self.text, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.text) or self._ended:
                return self.text[self.at : self.at + 1]
            self._more(CHUNK)

    def take(self, wanted: str) -> None:
        """Take the next character, which must be ``wanted``; 400 if it is not."""
        found = self.peek()
        if found != wanted:
            shown = repr(found) if found else "the end of the body"
            raise invalid("body", f"The body is not valid JSON: expected {wanted!r}, found {shown}.")
        self.at += 1

    def value(self, depth: int) -> Any:
        """The next JSON value, parsed whole; ``depth``: how deep it starts in the document."""
        self.peek()
        size = CHUNK
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.at)
            except RecursionError:
                raise too_deep(self.max_depth) from None
            except json.JSONDecodeError as error:  # incomplete so far, or wrong
                if self._ended:
                    raise invalid("body", f"The body is not valid JSON: {error}.") from None
                self._more(size)
                size *= 2
                continue
            except ValueError:  # an integer beyond Python's digit limit
                raise too_long_number() from None
            if end == len(self.text) and not self._ended:  # a number may go on in what is not read yet
                self._more(size)
                continue
            self.at = end
            check_json(value, self.max_depth, depth)
            return value


class StateDocument:
    """A state document read from ``stream`` as it arrives. ``clients()`` yields each clientId with
    its profiles (an iterator reading one at a time, to be read through before the next client),
    or with its value if that is not an array; ``other`` holds the document's other members,
    complete once ``clients()`` is exhausted."""

    def __init__(self, stream: IO[bytes], max_depth: int) -> None:
        self._text = _Text(stream, max_depth)
        self.other: dict[str, Any] = {}

    def clients(self) -> Iterator[tuple[str, Any]]:
        """Each client of the document's ``clients`` member, in order; then the rest is read."""
        text = self._text
        if not text.peek():
            return  # no body: an empty document, which imports nothing
        if text.peek() != "{":
            raise BadRequest(model_state={"body": ["A state document is a JSON object."]})
        named: set[str] = set()
        for name in self._members(1):
            if name in named:
                raise invalid("body", f"The state document names its member '{name}' twice.")
            named.add(name)
            if name == "clients" and text.peek() == "{":
                for client_id in self._members(2):
                    yield client_id, self._items(3) if text.peek() == "[" else text.value(3)
            else:
                self.other[name] = text.value(2)
        if text.peek():
            raise invalid("body", "The body is not valid JSON: extra data after the document.")

    def _members(self, depth: int) -> Iterator[str]:
        """The names of an object's members, the cursor left on each one's value."""
        text = self._text
        for _ in self._inside(depth, "{", "}"):
            if (found := text.peek()) != '"':
                shown = repr(found) if found else "the end of the body"
                raise invalid("body", f"The body is not valid JSON: expected a member name, found {shown}.")
            name = text.value(depth + 1)
            text.take(":")
            yield name

    def _items(self, depth: int) -> Iterator[Any]:
        """The values of an array, each parsed whole as it is reached."""
        for _ in self._inside(depth, "[", "]"):
            yield self._text.value(depth + 1)

    def _inside(self, depth: int, opening: str, closing: str) -> Iterator[None]:
        """Walk an object or an array: a step for each of its entries, which the caller reads
        before the next (a comma, then an entry, must follow)."""
        text = self._text
        if depth > text.max_depth:
            raise too_deep(text.max_depth)
        text.take(opening)
        if text.peek() == closing:
            text.at += 1
            return
        while True:
            yield
            if text.peek() != ",":
                text.take(closing)
                return
            text.at += 1
