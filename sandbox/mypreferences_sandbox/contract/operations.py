"""Each endpoint's contract, recorded on its view: summary, inputs, answers and errors.

A view states its contract where it is defined (in the style of flask-smorest's ``arguments`` and
``response``); the OpenAPI document, the operation names fault rules match on, and the request
journal all read it from there. Adding an endpoint is writing its view, and nothing else. What no
view states is here too: what every endpoint of a plane shares (its media types, credentials and
usual errors), the answers the HTTP server gives before any view runs, what creating answers
address (the document's links), and what a URL rule's arguments are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from marshmallow import Schema

from .errors import CHALLENGE
from .schemas import NAMESPACE, Error

# The control plane's reserved path prefix: never journaled, never faulted, not a clientId.
CONTROL_PREFIX = "/_sandbox"

# Vendor bodies are read, and answered, in any of these; JSON Patch is read as JSON only.
VENDOR_TYPES = ("application/json", "text/json", "application/xml", "text/xml")
PATCH_TYPES = ("application/json-patch+json", "application/json", "text/json")
JSON_ONLY = ("application/json",)
FORM = ("application/x-www-form-urlencoded",)
HTML = ("text/html",)

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
    """A request body: its shape, the media types read, and whether it may be left out. A body of a
    schema is read into it and loaded by it before the view runs (a vendor body's XML root element
    named ``root``, by default the schema's name); a ``reader`` reads one another way, given the
    schema (or None): a JSON Patch document, a payload with the query's parameters in it."""

    shape: Shape
    media_types: tuple[str, ...] = VENDOR_TYPES
    required: bool = True
    root: str = ""
    reader: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Query:
    """A query parameter: its name, its OpenAPI schema, what it means, whether it must be given."""

    name: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    required: bool = False

    @property
    def admitted(self) -> dict[str, Any]:
        """Its schema, and the views' rule that a required string given empty is missing (400)."""
        filled = self.required and self.schema.get("type") == "string"
        return {**self.schema, **({"minLength": 1} if filled else {})}


@dataclass(frozen=True)
class Pair:
    """Two query parameters given together or not at all, neither empty (else 400), documented as
    one exploded object named ``name`` whose members are both required
    (``?alternateIdType=CRM&alternateId=42``): OpenAPI 3.0 has no other way to say it."""

    name: str
    members: tuple[Query, Query]

    @property
    def description(self) -> str:
        """The rule, as the documents state it."""
        return f"{' and '.join(f'`{member.name}`' for member in self.members)}: both, or neither (400)."


@dataclass(frozen=True)
class Contract:
    """What an endpoint promises. ``errors`` maps each error status to what it means here;
    ``query`` may also be a marshmallow
    schema whose fields are the parameters. An endpoint not ``guarded`` answers without the
    plane's credentials; a ``secret_body`` is never kept by the journal. ``body_limit`` names the
    setting that bounds its request body, where it is not SANDBOX_MAX_CONTENT_LENGTH. ``produces``
    says what its answer gives to address what it made: a parameter of one of these names, in an
    operation under the same root, takes the runtime expression (OpenAPI links; the caller's own path
    parameters, its clientId, pass on as sent), so that a stateful client, or fuzzer, follows it."""

    plane: str
    summary: str
    answers: Mapping[int, Answer]
    errors: Mapping[int, str] = field(default_factory=dict)
    body: Body | None = None
    query: tuple[Query | Pair, ...] | type[Schema] = ()
    guarded: bool = True
    secret_body: bool = False
    body_limit: str = "MAX_CONTENT_LENGTH"
    produces: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.plane not in PLANES:
            raise ValueError(f"unknown plane {self.plane!r}")

    def every_answer(self) -> dict[int, Answer]:
        """Its answers, and its errors answered as the vendor's Error with the plane's headers."""
        plane = PLANES[self.plane]
        errors = {
            status: Answer(note, Error, plane.error_headers.get(status, {}))
            for status, note in self.errors.items()
        }
        return {**self.answers, **errors}


@dataclass(frozen=True)
class Plane:
    """What every endpoint of a plane shares: its title in the documents, the media types it
    answers in, the credentials it takes (any one of them), what its errors mean unless an
    endpoint says otherwise, and the headers they carry."""

    title: str
    media_types: tuple[str, ...]
    security: tuple[Mapping[str, list[str]], ...]
    errors: Mapping[int, str] = field(default_factory=dict)
    error_headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)


# Who an endpoint serves: the vendor's API, the sandbox's control plane, or the OAuth token issuer.
# An empty requirement makes a credential optional: the control plane wants its token only when
# SANDBOX_CONTROL_TOKEN is set, and the OAuth client may put its credentials in the form.
PLANES = {
    "vendor": Plane(
        "Profile API",
        VENDOR_TYPES,
        ({"PNAUTHINFO3": []}, {"bearer": []}),
        {
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
        {401: {"WWW-Authenticate": CHALLENGE}},
    ),
    "control": Plane(
        "Control plane",
        JSON_ONLY,
        ({}, {"controlToken": []}),
        {
            400: "The payload is invalid: ModelState names each problem.",
            401: "SANDBOX_CONTROL_TOKEN is set and the call lacks `Authorization: Bearer <token>`.",
            404: "The control plane is turned off (SANDBOX_CONTROL=false).",
        },
    ),
    "oauth": Plane("OAuth", JSON_ONLY, ({}, {"oauthClient": []})),
}
# How each credential is presented, in OpenAPI's words.
SECURITY_SCHEMES = {
    "PNAUTHINFO3": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`PNAUTHINFO3-HMAC-SHA256 Credential=<UserId>/<ISO 8601> Signature=<Base64>` (also "
        "SHA384, SHA512 and the un-keyed `PNAUTHINFO3-SHA256` family).",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `POST /oauth/token`."},
    "oauthClient": {"type": "http", "scheme": "basic", "description": "The OAuth client's id and secret."},
    "controlToken": {"type": "http", "scheme": "bearer", "description": "SANDBOX_CONTROL_TOKEN, when set."},
}


@dataclass(frozen=True)
class Shared:
    """An answer no endpoint declares, documented once under ``name``, in these media types."""

    name: str
    media_types: tuple[str, ...]
    answer: Answer


# Answered by the HTTP server itself, before the application sees the request, to any operation:
# gunicorn (the command line) past limit_request_line (4094 bytes) or limit_request_fields and
# limit_request_field_size (100 header fields of at most 8190 bytes); the in-process werkzeug
# server past 65536 bytes or 100 fields. Its own page, in HTML, never the vendor's error.
SERVER_ANSWERS = {
    414: Shared(
        "URITooLong",
        HTML,
        Answer(
            "The request line (method, path and query) is longer than the HTTP server reads (gunicorn: "
            "4094 bytes). Answered by the server itself, in HTML.",
            {"type": "string"},
        ),
    ),
    431: Shared(
        "RequestHeaderFieldsTooLarge",
        HTML,
        Answer(
            "More than 100 header fields, or one longer than the HTTP server reads (gunicorn: 8190 "
            "bytes). Answered by the server itself, in HTML.",
            {"type": "string"},
        ),
    ),
}
# Answered by the command line's server to a request whose body arrives late, before the
# application sees it: the vendor's error, in JSON whatever the Accept, and the connection closed.
BODY_ANSWERS = {
    408: Shared(
        "RequestTimeout",
        JSON_ONLY,
        Answer(
            "The body did not arrive within SANDBOX_BODY_TIMEOUT seconds of the head (the command "
            "line's server; 10 by default); the connection is closed. Never journaled, never faulted.",
            Error,
        ),
    ),
}
# A wrong method on a known path: the vendor's error, negotiated as the vendor's are.
METHOD_NOT_ALLOWED = Shared(
    "MethodNotAllowed",
    VENDOR_TYPES,
    Answer("The path does not answer this method.", Error, {"Allow": "The methods it answers."}),
)

# The contracts in a few lines, as the OpenAPI document opens with them.
OVERVIEW = f"""\
A local stand-in for the PossibleNOW MyPreferences Profile API, and its control plane.

- Every vendor path also answers under `/Profiles/`; this document lists both forms (tag
  *Profile API under /Profiles*), as operations identical to the root ones.
- Vendor endpoints read and write JSON and XML (root elements and entries as in the vendor's
  samples, namespace `{NAMESPACE}`; `ConsentStatus` by name in XML). Errors take the
  same negotiated format; a wrong method on a known path is a 405 with `Allow`
  (`#/components/responses/MethodNotAllowed`).
- String lengths count UTF-16 code units, as .NET does (an emoji counts two). Unknown fields are
  ignored and named in `X-Sandbox-Warning` headers.
- Any request may get the HTTP server's own 414 or 431 (`#/components/responses/URITooLong`,
  `RequestHeaderFieldsTooLarge`), in HTML, before the sandbox sees it; one whose body arrives
  late, the command line's 408 (`RequestTimeout`).
- Links lead from what an operation creates to the operations that address it: from
  `create_profile`'s ProfileId and first AlternateId, and from `add_fault`'s id.
- Fault rules (`POST {CONTROL_PREFIX}/faults`) can answer any vendor operation with any status,
  delay it or break its connection; their `match.operation` is the operationId without its
  blueprint (`create_profile`).
"""


View = TypeVar("View", bound=Callable[..., Any])
ATTRIBUTE = "sandbox_contract"


def contract(plane: str, summary: str, answers: Mapping[int, Answer], **details: Any) -> Contract:
    """A ``Contract`` (its other fields as keywords); an error status given with None means what it
    usually means on the plane."""
    usual = PLANES[plane].errors if plane in PLANES else {}  # Contract refuses an unknown plane
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
# What an argument's converter admits, in OpenAPI's words (werkzeug's int reads digits only); an
# argument of any other converter is a string.
CONVERTED = {"int": {"type": "integer", "minimum": 0}}
# What the documents say of arguments, by their documented names.
ARGUMENT_NOTES = {
    "clientId": f"The account; `{CONTROL_PREFIX.strip('/')}` is reserved for the control plane.",
    "alternateIdType": "Case ignored.",
    "alternateId": "Case ignored.",
    "ruleId": f"As `f1`, from POST {CONTROL_PREFIX}/faults.",
}


def route_path(rule: str) -> str:
    """A URL rule as the documents show it: ``/<client:client_id>/Profile`` is ``/{clientId}/Profile``."""
    return ARGUMENT.sub(lambda found: "{" + camel(found["name"]) + "}", rule)


def camel(name: str) -> str:
    """``profile_id`` as the vendor spells it: ``profileId``."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
