"""A small Python client for the control plane (``/_sandbox``) of any running sandbox.

It needs nothing beyond the standard library, so a test suite can drive a sandbox in a container
as easily as the in-process one::

    control = ControlClient("http://127.0.0.1:8080")
    control.add_fault(match={"operation": "create_profile"}, respond={"status": 503}, times=1)
    assert control.count(client_id="acme", method="POST") == 1
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from .contract import CONTROL_PREFIX

# Python-style filter names and the query parameters they become.
FILTERS = {"client_id": "clientId", "method": "method", "path": "path", "status": "status",
           "since": "since", "until": "until", "warning": "warning", "limit": "limit"}  # fmt: skip


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
        params = {key: _text(value) for key, value in (query or {}).items() if value is not None}
        query_string = f"?{urllib.parse.urlencode(params)}" if params else ""
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

    def health(self) -> dict:
        """``{"status": "ok", "version": ...}``."""
        return self._call("GET", "/health")

    def reset(self, client_id: str | None = None, seed: int | None = None) -> None:
        """Reset everything (reseeding with ``seed``), or only ``client_id``'s data."""
        body = {key: value for key, value in (("clientId", client_id), ("seed", seed)) if value is not None}
        self._call("POST", "/reset", body)

    def add_fault(self, rule: dict | None = None, **fields: Any) -> dict:
        """Add a fault rule (a dict, or its fields as keywords); returns it as reported."""
        return self._call("POST", "/faults", {**(rule or {}), **fields})

    def faults(self, client_id: str | None = None) -> list[dict]:
        """Every fault rule, or those scoped to ``client_id``."""
        return self._call("GET", "/faults", query={"clientId": client_id})

    def fault(self, rule_id: str) -> dict:
        """One fault rule, with its hits and what remains."""
        return self._call("GET", f"/faults/{urllib.parse.quote(rule_id)}")

    def delete_fault(self, rule_id: str) -> None:
        """Remove one fault rule."""
        self._call("DELETE", f"/faults/{urllib.parse.quote(rule_id)}")

    def clear_faults(self, client_id: str | None = None) -> None:
        """Remove every fault rule, or those scoped to ``client_id``."""
        self._call("DELETE", "/faults", query={"clientId": client_id})

    def requests(self, **filters: Any) -> list[dict]:
        """Journal entries matching ``client_id``, ``method``, ``path``, ``status``, ``since``,
        ``until`` and ``warning`` (a glob on each warning line; ``"*"``: drew any), the newest ``limit``."""
        return self._call("GET", "/requests", query=_filters(filters))

    def count(self, **filters: Any) -> int:
        """How many journal entries match the same filters."""
        return self._call("GET", "/requests/count", query=_filters(filters))["count"]

    def clear_requests(self, client_id: str | None = None) -> None:
        """Forget the journal, or ``client_id``'s entries."""
        self._call("DELETE", "/requests", query={"clientId": client_id})

    def export_state(self, client_id: str | None = None) -> dict:
        """``{"clients": {clientId: [profiles]}}`` for every client, or one."""
        return self._call("GET", "/state", query={"clientId": client_id})

    def import_state(self, document: dict) -> dict:
        """Replace the profiles of each client in ``document``; returns how many were imported."""
        return self._call("POST", "/state", document)

    def accounts(self, client_id: str | None = None) -> dict:
        """``{"accounts": {clientId: {kind: [types]}}}``: every account's configured kinds, or one's."""
        return self._call("GET", "/accounts", query={"clientId": client_id})

    def configure_account(self, client_id: str, kinds: dict) -> dict:
        """Configure (and close) the kinds of types ``kinds`` names for ``client_id``."""
        return self._call("PUT", f"/accounts/{urllib.parse.quote(client_id, safe='')}", kinds)

    def clock(self) -> dict:
        """``{"now": ..., "frozen": ...}``."""
        return self._call("GET", "/clock")

    def set_clock(self, moment: datetime | str) -> dict:
        """Freeze the sandbox clock at ``moment``."""
        return self._call("PUT", "/clock", {"time": _text(moment)})

    def advance_clock(self, seconds: float) -> dict:
        """Move the sandbox clock forward by ``seconds``."""
        return self._call("POST", "/clock/advance", {"seconds": seconds})

    def release_clock(self) -> dict:
        """Let the sandbox clock follow real time again."""
        return self._call("DELETE", "/clock")


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise TypeError(f"unknown journal filters: {', '.join(sorted(unknown))}")
    return {FILTERS[name]: value for name, value in filters.items()}


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
