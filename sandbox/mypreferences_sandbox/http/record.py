"""The one typed record of each request: what it is, and what the sandbox decided about it.

The pipeline starts a record when a request arrives; views, the responder and the fault hooks
fill it in; the journal entry and the log line are written from it. It lives in the WSGI environ,
the one place that both the Flask hooks and the connection-fault middleware can reach.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import request

from ..contract.operations import Contract
from ..domain.faults import Firing, RequestFacts

ENVIRON_KEY = "sandbox.record"


@dataclass
class RequestRecord:
    """One request: its operation, clientId and caller, and every decision taken about it."""

    started: float = field(default_factory=time.perf_counter)
    contract: Contract | None = None
    operation: str | None = None
    client_id: str | None = None
    control: bool = False
    user: str | None = None
    response_type: str | None = None
    profile_id: int | None = None
    error: dict[str, Any] | None = None
    conflict: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    firing: Firing | None = None
    # The request as its fault rules were held against it, for the journal entry's near miss.
    facts: RequestFacts | None = None
    # A connection fault cut the exchange: the client saw no status at all.
    dropped: bool = False
    # The store could not be reached: the request was answered 503, and is not journaled (a
    # second wait on a silent Redis would double the client's).
    unreachable: bool = False
    # The whole body's parsed form and why it has none (formats.parsed_form), once the view or a
    # fault rule has parsed it: the journal entry takes it rather than parsing the body again.
    body_form: tuple[Any, str | None] | None = None

    @property
    def plane(self) -> str | None:
        """``vendor``, ``control`` or ``oauth``: whom the endpoint serves (None: no route matched)."""
        return self.contract.plane if self.contract else None

    def elapsed_ms(self) -> float:
        """Milliseconds since the request started."""
        return round((time.perf_counter() - self.started) * 1000, 3)


def current_record() -> RequestRecord:
    """The record of the request being handled."""
    return request.environ[ENVIRON_KEY]
