"""What a fault rule and a journal filter hold a request's parsed body against: JSON Pointers and values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonpointer import JsonPointer, JsonPointerException  # type: ignore[import-untyped]


def same(found: Any, expected: Any) -> bool:
    """Whether two JSON values are equal as JSON: numbers by value (1 is 1.0), a boolean never a
    number (as Python's ``True == 1`` has it), objects key by key, arrays item by item."""
    if isinstance(found, dict) and isinstance(expected, dict):
        return found.keys() == expected.keys() and all(same(found[key], expected[key]) for key in found)
    if isinstance(found, list) and isinstance(expected, list):
        return len(found) == len(expected) and all(map(same, found, expected))
    if isinstance(found, bool) or isinstance(expected, bool):
        return found is expected
    if isinstance(found, int | float) and isinstance(expected, int | float):
        return found == expected
    return type(found) is type(expected) and found == expected


@dataclass(frozen=True, eq=False)
class BodyMatcher:
    """A validated JSON Pointer, compiled, and the JSON value a parsed body must hold there."""

    pointer: str
    value: Any
    compiled: JsonPointer

    @classmethod
    def of(cls, pointer: str, value: Any) -> BodyMatcher:
        """The matcher of a validated pointer and its value."""
        return cls(pointer, value, JsonPointer(pointer))

    def holds(self, document: Any) -> bool:
        """Whether ``document`` (a parsed body; None: none) holds the value at the pointer."""
        found = document
        for part in self.compiled.parts:
            # jsonpointer would index into a string ("/0" of "abc" is "a"); JSON Pointer does not.
            if not isinstance(found, dict | list):
                return False
            try:
                found = self.compiled.walk(found, part)
            except JsonPointerException:
                return False
        return same(found, self.value)
