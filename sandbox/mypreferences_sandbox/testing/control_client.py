"""A small, typed Python client for the control plane (``/_sandbox``) of any running sandbox.

It needs nothing beyond the standard library, so a test suite can drive a sandbox in a container
as easily as the in-process one::

    control = ControlClient("http://127.0.0.1:8080")
    control.add_fault(match={"operation": "create_profile"}, respond={"status": 503}, times=1)
    assert control.count(client_id="acme", method="POST") == 1

Its payloads and answers are TypedDicts, so that a type checker catches a misspelt rule field or
journal filter (``tims=1``, ``statuss=201``) and knows what a rule report or journal entry holds.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any, Literal, NotRequired, Required, TypedDict, Unpack, cast

from ..contract.operations import CONTROL_PREFIX

When = Literal["before", "after"]
ConnectionFaultType = Literal[
    "CONNECTION_RESET_BY_PEER",
    "EMPTY_RESPONSE",
    "RANDOM_DATA_THEN_CLOSE",
    "MALFORMED_RESPONSE_CHUNK",
    "TRUNCATED_RESPONSE",
    "DRIBBLE",
    "HANG",
]


class Match(TypedDict, total=False):
    """Which requests a rule matches (every one it names must hold)."""

    method: str | list[str]
    path: str  # a glob
    operation: str  # a vendor operation's name, such as create_profile
    clientId: str
    headers: dict[str, str]  # name -> glob on the value
    body: dict[str, Any]  # JSON Pointer -> the JSON value the parsed body holds there


class Uniform(TypedDict):
    """A delay drawn evenly between two bounds, in milliseconds."""

    lower: int
    upper: int


class Lognormal(TypedDict):
    """A delay drawn from a log-normal distribution: its median in milliseconds, and its sigma."""

    median: float
    sigma: float


class Delay(TypedDict, total=False):
    """A rule's delay: exactly one of ``fixed`` (milliseconds), ``uniform`` or ``lognormal``."""

    fixed: int
    uniform: Uniform
    lognormal: Lognormal


class Respond(TypedDict, total=False):
    """An HTTP error to answer with."""

    status: Required[int]
    headers: dict[str, str]
    body: Any  # a JSON value, sent as JSON; a string, sent as text


class ConnectionFault(TypedDict, total=False):
    """A fault carried out on the connection's socket."""

    type: Required[ConnectionFaultType]
    chunks: int  # DRIBBLE
    duration: int  # DRIBBLE and HANG, in milliseconds


class FaultRule(TypedDict, total=False):
    """A fault rule as ``add_fault`` takes it (docs/control-plane.md, "Fault rules")."""

    match: Match
    when: When
    delay: Delay
    respond: Respond
    fault: ConnectionFault
    times: int
    skip: int
    probability: float
    seed: int
    ttl: int  # milliseconds
    expiresAt: datetime | str  # an aware datetime, or ISO 8601 with a zone


class FaultReport(TypedDict):
    """A fault rule as the sandbox reports it: what was asked, what it did, what remains."""

    id: str
    match: Match
    when: When
    delay: NotRequired[Delay]
    respond: NotRequired[Respond]
    fault: NotRequired[ConnectionFault]
    times: NotRequired[int]
    skip: int
    probability: NotRequired[float]
    seed: NotRequired[int]
    expiresAt: str | None
    matched: int  # matching requests seen, skipped ones included
    hits: int  # times the rule fired
    remaining: int | None  # None: no limit
    state: Literal["active", "spent", "expired"]


class Firing(TypedDict):
    """The rule that fired on a journaled request, its hits then and what remained."""

    id: str
    when: When
    hits: int
    remaining: int | None


class NearMiss(TypedDict):
    """The active rule a request that fired none came closest to matching, and what it missed."""

    rule: str
    unmet: list[str]  # "method", "path", "operation", "headers.<name>", "body.<pointer>"


class JournalEntry(TypedDict):
    """One vendor request as the journal keeps it (docs/control-plane.md, "Request journal")."""

    id: int
    time: str
    method: str
    path: str
    operation: str | None  # None: no route
    clientId: str | None
    query: dict[str, list[str]]
    headers: dict[str, str]  # credentials redacted
    body: str
    bodyTruncated: bool
    bodyJson: NotRequired[Any]  # the body parsed, when kept whole: JSON's value, or XML's simple form
    bodyNotParsed: NotRequired[Literal["truncated", "malformed", "not JSON or XML", "withheld"]]
    status: int | None  # None: a connection fault left the client without one
    durationMs: float
    profileId: NotRequired[int]
    error: NotRequired[dict[str, Any]]
    conflict: NotRequired[dict[str, Any]]
    fault: NotRequired[Firing]
    nearMiss: NotRequired[NearMiss]
    warnings: NotRequired[list[str]]
    cut: NotRequired[dict[str, int]]  # how many headers, query parameters, ModelState keys were left out


class EntryFilters(TypedDict, total=False):
    """The journal's filters, all optional and all required to hold (``client_id`` and ``limit`` apart)."""

    method: str
    operation: str  # a vendor operation's name, such as create_profile
    path: str  # a glob
    status: int
    since: datetime | str  # an aware datetime, or ISO 8601 with a zone
    until: datetime | str
    warning: str  # a glob on each warning line; "*": drew any
    body: dict[str, Any]  # JSON Pointer -> the JSON value the entry's bodyJson holds there


class Health(TypedDict):
    """``GET /_sandbox/health``."""

    status: Literal["ok"]
    version: str
    store: Literal["memory", "redis"]


class Clock(TypedDict):
    """The sandbox clock: its time (ISO 8601) and whether it is frozen."""

    now: str
    frozen: bool


class StateDocument(TypedDict, total=False):
    """Profiles per clientId, and the accounts' configured kinds of types (an export has both; an
    import may leave either out)."""

    clients: dict[str, list[dict[str, Any]]]
    accounts: dict[str, dict[str, list[Any]]]


class ImportReport(TypedDict):
    """How many profiles each imported client now has, and the accounts configured."""

    imported: dict[str, int]
    accounts: list[str]


class Accounts(TypedDict):
    """Each account's configured kinds of types."""

    accounts: dict[str, dict[str, list[Any]]]


# Python-style filter names and the query parameters they become.
FILTERS = {"client_id": "clientId", "method": "method", "operation": "operation", "path": "path",
           "status": "status", "since": "since", "until": "until", "warning": "warning", "body": "body",
           "limit": "limit"}  # fmt: skip


class ControlError(Exception):
    """A control call the sandbox refused: its status and error document."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body}")


class ControlClient:
    """The control plane of the sandbox at ``base_url`` (with ``token`` if it demands one)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        params = {
            key: [_text(item) for item in value] if isinstance(value, list) else _text(value)
            for key, value in (query or {}).items()
            if value is not None
        }
        query_string = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
        url = f"{self.base_url}{CONTROL_PREFIX}{path}{query_string}"
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            raise ControlError(error.code, json.loads(raw) if raw else None) from None
        return json.loads(raw) if raw else None

    def health(self) -> Health:
        """``{"status": "ok", "version": ..., "store": ...}``."""
        return cast(Health, self._call("GET", "/health"))

    def reset(self, client_id: str | None = None, seed: int | None = None) -> None:
        """Reset everything (reseeding with ``seed``), or only ``client_id``'s data."""
        body = {key: value for key, value in (("clientId", client_id), ("seed", seed)) if value is not None}
        self._call("POST", "/reset", body)

    def add_fault(self, rule: FaultRule | None = None, **fields: Unpack[FaultRule]) -> FaultReport:
        """Add a fault rule (a dict, its fields as keywords, or both: keywords win); returns its report."""
        spec: dict[str, Any] = {**(rule or {}), **fields}
        if isinstance(spec.get("expiresAt"), datetime):
            spec["expiresAt"] = spec["expiresAt"].isoformat()
        return cast(FaultReport, self._call("POST", "/faults", spec))

    def faults(self, client_id: str | None = None) -> list[FaultReport]:
        """Every fault rule, or those scoped to ``client_id``."""
        return cast(list[FaultReport], self._call("GET", "/faults", query={"clientId": client_id}))

    def fault(self, rule_id: str) -> FaultReport:
        """One fault rule, with its hits and what remains."""
        return cast(FaultReport, self._call("GET", f"/faults/{urllib.parse.quote(rule_id)}"))

    def delete_fault(self, rule_id: str) -> None:
        """Remove one fault rule."""
        self._call("DELETE", f"/faults/{urllib.parse.quote(rule_id)}")

    def clear_faults(self, client_id: str | None = None) -> None:
        """Remove every fault rule, or those scoped to ``client_id``."""
        self._call("DELETE", "/faults", query={"clientId": client_id})

    def requests(
        self, *, client_id: str | None = None, limit: int | None = None, **filters: Unpack[EntryFilters]
    ) -> list[JournalEntry]:
        """Journal entries of ``client_id`` matching ``filters``, oldest first; the newest ``limit``."""
        query = _filters({"client_id": client_id, "limit": limit, **filters})
        return cast(list[JournalEntry], self._call("GET", "/requests", query=query))

    def count(self, *, client_id: str | None = None, **filters: Unpack[EntryFilters]) -> int:
        """How many journal entries of ``client_id`` match ``filters``."""
        query = _filters({"client_id": client_id, **filters})
        return cast(int, self._call("GET", "/requests/count", query=query)["count"])

    def clear_requests(self, client_id: str | None = None) -> None:
        """Forget the journal, or ``client_id``'s entries."""
        self._call("DELETE", "/requests", query={"clientId": client_id})

    def export_state(self, client_id: str | None = None) -> StateDocument:
        """``{"clients": {clientId: [profiles]}, "accounts": {...}}`` for every client, or one."""
        return cast(StateDocument, self._call("GET", "/state", query={"clientId": client_id}))

    def import_state(self, document: StateDocument) -> ImportReport:
        """Replace the profiles of each client in ``document``; returns how many were imported."""
        return cast(ImportReport, self._call("POST", "/state", document))

    def accounts(self, client_id: str | None = None) -> Accounts:
        """``{"accounts": {clientId: {kind: [types]}}}``: every account's configured kinds, or one's."""
        return cast(Accounts, self._call("GET", "/accounts", query={"clientId": client_id}))

    def configure_account(self, client_id: str, kinds: dict[str, list[Any]]) -> Accounts:
        """Configure (and close) the kinds of types ``kinds`` names for ``client_id``."""
        path = f"/accounts/{urllib.parse.quote(client_id, safe='')}"
        return cast(Accounts, self._call("PUT", path, kinds))

    def clock(self) -> Clock:
        """``{"now": ..., "frozen": ...}``."""
        return cast(Clock, self._call("GET", "/clock"))

    def set_clock(self, moment: datetime | str) -> Clock:
        """Freeze the sandbox clock at ``moment``."""
        return cast(Clock, self._call("PUT", "/clock", {"time": _text(moment)}))

    def advance_clock(self, seconds: float) -> Clock:
        """Move the sandbox clock forward by ``seconds`` (a running clock is frozen first)."""
        return cast(Clock, self._call("POST", "/clock/advance", {"seconds": seconds}))

    def release_clock(self) -> Clock:
        """Let the sandbox clock follow real time again."""
        return cast(Clock, self._call("DELETE", "/clock"))


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    # Checked at run time too, for untyped callers: a TypeError naming them, as a wrong keyword gets.
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise TypeError(f"unknown journal filters: {', '.join(sorted(unknown))}")
    if filters.get("body") is not None:
        filters = {**filters, "body": _body_conditions(filters["body"])}
    return {FILTERS[name]: value for name, value in filters.items()}


def _body_conditions(body: dict[str, Any]) -> list[str]:
    """The body filter's ``<pointer>=<value>`` parameters, each value as JSON, so that its type
    counts (``"42"`` is a string, ``42`` a number) whatever the value holds."""
    for pointer in body:
        if "=" in pointer:  # the sandbox ends a pointer at the first "="
            raise ValueError(f"a journal body filter's pointer cannot hold '=': {pointer!r}")
    return [f"{pointer}={json.dumps(value)}" for pointer, value in body.items()]


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
