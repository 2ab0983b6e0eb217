"""Helpers for the tests: the fixtures folder, a served sandbox, request builders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pytest
import requests
from mypreferences_sandbox.domain.auth import pnauthinfo3_header
from mypreferences_sandbox.testing.pytest_plugin import InProcessServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
JSON = "application/json"
XML = "application/xml"
NAMESPACE = "http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def fixture_bytes(name: str) -> bytes:
    """The bytes of a file under ``fixtures/``."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    """A JSON file under ``fixtures/``, parsed."""
    return json.loads(fixture_bytes(name))


# The stores a sandbox of the tests runs on, as fixture params: in memory, and on a real Redis.
STORES = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


def store_config(request: pytest.FixtureRequest, namespace: str) -> dict:
    """The settings of a sandbox on the store ``request.param`` names: none in memory; on Redis,
    the session's redis-server under a namespace of its own, starting with ``namespace``."""
    if request.param == "memory":
        return {}
    server = request.getfixturevalue("redis_server")
    return {"STORE": server.url, "STORE_NAMESPACE": f"{namespace}-{uuid.uuid4().hex[:8]}"}


class Served(InProcessServer):
    """The pytest plugin's in-process server, as a context manager, with a look into its store."""

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(dict(config or {}))

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def profiles(self, client_id: str) -> list[dict]:
        """What the store holds for ``client_id``."""
        return self.app.extensions["sandbox"].store.profiles(client_id)


def post_json(url: str, body: object, **headers: str) -> requests.Response:
    """POST ``body`` as JSON with extra ``headers`` (underscores in names become hyphens)."""
    return requests.post(
        url, data=json.dumps(body), headers={"Content-Type": JSON, **_headers(headers)}, timeout=10
    )


def auth(moment: datetime | None = None) -> dict[str, str]:
    """A well-formed header of UserId ``tester``, issued at ``moment`` (default: now), as the default
    (lenient) authentication wants on every vendor request: it checks the timestamp, not the
    signature (no secret is configured)."""
    return {"Authorization": pnauthinfo3_header("any", "tester", "no-secret", moment)}


# What the sandbox says of nearly every request of these tests, whatever they test: lenient
# authentication, of a header ``auth()`` signs (no secret is configured), and an open account, of the
# types it registers (every test has a clientId of its own, which nobody configured).
BACKGROUND = ("PNAUTHINFO3 signature not verified", "registered ")


def warnings_of(response: requests.Response) -> list[str]:
    """The ``X-Sandbox-Warning`` lines of a response, but for the background ones."""
    lines = response.raw.headers.getlist("X-Sandbox-Warning")
    return [line for line in lines if not line.startswith(BACKGROUND)]


def _headers(headers: dict[str, str]) -> dict[str, str]:
    """``auth()`` plus ``headers`` (underscores in names become hyphens)."""
    return {**auth(), **{name.replace("_", "-"): value for name, value in headers.items()}}


def minimal_profile(**fields: object) -> dict:
    """A small valid create body, with ``fields`` added or replaced."""
    return {
        "CustomerName": {"FirstName": "Ann", "LastName": "Example"},
        "Emails": [{"EmailAddress": "ann@example.com", "IsDefault": True}],
        **fields,
    }


def send_bytes(
    method: str, url: str, body: bytes | Iterable[bytes], content_type: str | None, **headers: str
) -> requests.Response:
    """``method`` on ``url`` with raw ``body`` bytes of ``content_type`` (None: no Content-Type); an
    iterable of pieces is sent chunked."""
    sent = {"Content-Type": content_type} if content_type else {}
    return requests.request(method, url, data=body, headers=_headers({**sent, **headers}), timeout=10)


def send(method: str, url: str, body: object = None, **headers: str) -> requests.Response:
    """``method`` on ``url`` with ``body`` as JSON (None: no body) and extra ``headers``."""
    data = None if body is None else json.dumps(body)
    sent = {"Content-Type": JSON} if body is not None else {}
    return requests.request(method, url, data=data, headers={**sent, **_headers(headers)}, timeout=10)


def send_xml(method: str, url: str, root: str, inner: str, **headers: str) -> requests.Response:
    """``method`` on ``url`` with an XML body ``<root>inner</root>`` in the vendor's namespace."""
    body = f'<{root} xmlns:i="{XSI}" xmlns="{NAMESPACE}">{inner}</{root}>'.encode()
    return requests.request(
        method, url, data=body, headers={"Content-Type": XML, **_headers(headers)}, timeout=10
    )


def xml_of(response: requests.Response) -> ET.Element:
    """A response's XML document."""
    return ET.fromstring(response.content)


def find(element: ET.Element, path: str) -> ET.Element | None:
    """``element.find`` with every step of ``path`` in the vendor's namespace."""
    return element.find("/".join(f"{{{NAMESPACE}}}{step}" for step in path.split("/")))


def patch(url: str, operations: object) -> requests.Response:
    """A JSON Patch request."""
    headers = _headers({"Content-Type": "application/json-patch+json"})
    return requests.patch(url, data=json.dumps(operations), headers=headers, timeout=10)


class Vendor:
    """``requests``' verbs for vendor calls: ``auth()`` is added to the headers of every one."""

    @staticmethod
    def request(
        method: str, url: str, headers: dict[str, str] | None = None, **kwargs: object
    ) -> requests.Response:
        return requests.request(method, url, headers={**auth(), **(headers or {})}, **kwargs)

    def get(self, url: str, **kwargs: object) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: object) -> requests.Response:
        return self.request("DELETE", url, **kwargs)


vendor = Vendor()


class Launched:
    """The command line, run as a real process on a free port; stopped (and its pipes closed) on exit."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "mypreferences_sandbox", "--host", "127.0.0.1", "--port", "0", *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.process.stdout.readline()
        if not line.startswith("mypreferences-sandbox serving on "):
            self.__exit__()
            raise RuntimeError(f"the sandbox did not start: {line!r} {self.stderr}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.stderr = ""

    def __enter__(self) -> Launched:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        _, self.stderr = self.process.communicate(timeout=15)
