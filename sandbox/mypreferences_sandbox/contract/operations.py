"""Each endpoint's contract, recorded on its view: summary, inputs, answers and errors.

A view states its contract where it is defined (in the style of flask-smorest's ``arguments`` and
``response``); the OpenAPI document, the operation names fault rules match on, and the request
journal all read it from there. Adding an endpoint is writing its view, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from marshmallow import Schema

# The control plane's reserved path prefix: never journaled, never faulted, not a clientId.
CONTROL_PREFIX = "/_sandbox"

# Vendor bodies are read, and answered, in any of these; JSON Patch is read as JSON only.
VENDOR_TYPES = ("application/json", "text/json", "application/xml", "text/xml")
PATCH_TYPES = ("application/json-patch+json", "application/json", "text/json")
JSON_ONLY = ("application/json",)
FORM = ("application/x-www-form-urlencoded",)

# Who an endpoint serves: the vendor's API, the sandbox's control plane, or the OAuth token issuer.
PLANES = ("vendor", "control", "oauth")

# What each plane's errors mean, unless an endpoint says otherwise.
USUAL_ERRORS = {
    "vendor": {
        400: "Invalid request: every broken rule at once, in ModelState under its field path "
        "(`Addresses[0].City`).",
        401: "Missing or unacceptable Authorization (as SANDBOX_AUTH_MODE decides; never in mode `off`).",
        403: "Strict mode: the user lacks the `read` (GET) or `write` permission.",
        404: "Unknown profile or another clientId's; strict mode: an unknown clientId.",
        406: "`Accept` names none of the media types; nothing is stored.",
        409: "An (AlternateIdType, AlternateId) pair is held by another profile of the clientId "
        "(case ignored).",
        413: "The body is larger than SANDBOX_MAX_CONTENT_LENGTH.",
        415: "The Content-Type is not one this operation reads.",
    },
    "control": {
        400: "The payload is invalid: ModelState names each problem.",
        401: "SANDBOX_CONTROL_TOKEN is set and the call lacks `Authorization: Bearer <token>`.",
        404: "The control plane is turned off (SANDBOX_CONTROL=false).",
    },
}
# A body or answer shape: a marshmallow schema class, or an OpenAPI schema object as it is.
Shape = type[Schema] | Mapping[str, Any]


@dataclass(frozen=True)
class Answer:
    """One documented answer: what it means, its shape, and the headers it carries (name: meaning)."""

    description: str
    shape: Shape | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Body:
    """A request body: its shape, the media types read, and whether it may be left out. A vendor
    body of a schema is read into it and loaded by it, its XML root element named ``root`` (by
    default, the schema's name); ``reader`` reads one that is not (a JSON Patch document)."""

    shape: Shape
    media_types: tuple[str, ...] = VENDOR_TYPES
    required: bool = True
    root: str = ""
    reader: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Query:
    """A query parameter: its name, its OpenAPI schema, what it means, whether it must be given."""

    name: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Contract:
    """What an endpoint promises. ``errors`` maps each error status to what it means here;
    ``query`` may also be a marshmallow
    schema whose fields are the parameters. An endpoint not ``guarded`` answers without the
    plane's credentials; a ``secret_body`` is never kept by the journal. ``body_limit`` names the
    setting that bounds its request body, where it is not SANDBOX_MAX_CONTENT_LENGTH."""

    plane: str
    summary: str
    answers: Mapping[int, Answer]
    errors: Mapping[int, str] = field(default_factory=dict)
    body: Body | None = None
    query: tuple[Query, ...] | type[Schema] = ()
    guarded: bool = True
    secret_body: bool = False
    body_limit: str = "MAX_CONTENT_LENGTH"

    def __post_init__(self) -> None:
        if self.plane not in PLANES:
            raise ValueError(f"unknown plane {self.plane!r}")


View = TypeVar("View", bound=Callable[..., Any])
ATTRIBUTE = "sandbox_contract"


def contract(plane: str, summary: str, answers: Mapping[int, Answer], **details: Any) -> Contract:
    """A ``Contract`` (its other fields as keywords); an error status given with None means what it
    usually means on the plane."""
    usual = USUAL_ERRORS.get(plane, {})
    errors = {status: note or usual[status] for status, note in details.pop("errors", {}).items()}
    return Contract(plane, summary, answers, errors, **details)


def record(view: View, found: Contract) -> View:
    """``view``, with ``found`` recorded on it as its contract."""
    setattr(view, ATTRIBUTE, found)
    return view


def contract_of(view: Callable[..., Any] | None) -> Contract | None:
    """The contract a view was documented with, or None."""
    return getattr(view, ATTRIBUTE, None)


def operation_names(views: Mapping[str, Callable[..., Any]], plane: str) -> set[str]:
    """The names of the operations of ``plane`` among an app's views (by endpoint)."""
    return {
        name
        for endpoint, view in views.items()
        if (found := contract_of(view)) is not None
        and found.plane == plane
        and (name := operation_name(endpoint))
    }


def operation_name(endpoint: str | None) -> str | None:
    """An endpoint's operation name, as fault rules and the journal call it: the view's name."""
    return endpoint.rpartition(".")[2] if endpoint and "." in endpoint else None


def is_control(path: str) -> bool:
    """Whether ``path`` belongs to the control plane."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


# A URL rule's arguments, <converter:name> or <name>; their documented names are camelCase.
ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def route_path(rule: str) -> str:
    """A URL rule as the documents show it: ``/<client:client_id>/Profile`` is ``/{clientId}/Profile``."""
    return ARGUMENT.sub(lambda found: "{" + camel(found["name"]) + "}", rule)


def camel(name: str) -> str:
    """``profile_id`` as the vendor spells it: ``profileId``."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
