"""Black-box checks of a freshly started sandbox over HTTP, for ``scripts/container-check``.

Usage: ``python3 scripts/container_checks.py BASE_URL FIXTURES_DIR``

Prints one line per check, ``PASS name`` or ``FAIL name: detail``, and exits 1 when any failed.
The checks run in order and build on each other (the journal counts what the earlier ones sent),
so the sandbox must be new. Standard library only: this runs on the host, outside any venv.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

# A well-formed header issued now passes the default (lenient) authentication, which checks the
# timestamp's window (15 minutes, longer than these checks take) and the signature's form (Base64 of
# a SHA-256 digest's 32 bytes), not the signature itself: no secret is configured.
ISSUED = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
AUTH = f"PNAUTHINFO3-HMAC-SHA256 Credential=demo/{ISSUED} Signature={base64.b64encode(bytes(32)).decode()}"
MODELS_NS = "{http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models}"


class CheckFailed(Exception):
    """A check's expectation did not hold; the message is the detail printed after FAIL."""


class Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def summary(self) -> str:
        """The status and the start of the body, on one line, for a failure's detail."""
        text = self.body[:300].decode("utf-8", "replace")
        return f"{self.status} {' '.join(text.split())}"


def expect(condition: object, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


def expect_status(response: Response, status: int) -> None:
    expect(response.status == status, f"expected {status}, got {response.summary()}")


class Checks:
    def __init__(self, base_url: str, fixtures: Path) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.fixtures = fixtures
        self.sent: Counter[str] = Counter()  # vendor requests sent, per clientId
        self.profile_path: str | None = None  # the path of the profile created from JSON

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> Response:
        headers = {"Content-Type": content_type} if content_type else {}
        if not path.startswith("/_sandbox"):
            headers["Authorization"] = AUTH
            client_id = path.strip("/").split("/")[0]
            self.sent[client_id] += 1
        # http.client rather than urllib: every status comes back as a value, not an exception.
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def create(self, client_id: str, fixture: str) -> Response:
        content_type = "application/xml" if fixture.endswith(".xml") else "application/json"
        body = (self.fixtures / fixture).read_bytes()
        return self.request("POST", f"/{client_id}/Profile", body, content_type)

    def health(self) -> None:
        response = self.request("GET", "/_sandbox/health")
        expect_status(response, 200)
        expect(response.json().get("status") == "ok", f"body {response.summary()}")

    def create_json(self) -> None:
        response = self.create("acme", "create-profile.json")
        expect_status(response, 201)
        location = response.headers.get("Location")
        expect(location, "no Location header")
        profile = response.json()
        expect(isinstance(profile.get("ProfileId"), int), f"no ProfileId: {response.summary()}")
        # Derived from the country code by pycountry, whose data the image trims.
        country = profile["Addresses"][0].get("Country")
        expect(country == "United States", f"Addresses[0].Country {country!r}")
        self.profile_path = urllib.parse.urlsplit(location).path

    def create_xml(self) -> None:
        # The XML fixture holds the JSON one's AlternateIds: another clientId, or it would be a 409.
        response = self.create("globex", "create-profile.xml")
        expect_status(response, 201)
        expect(response.headers.get("Location"), "no Location header")
        content_type = response.headers.get("Content-Type", "")
        expect("xml" in content_type, f"Content-Type {content_type!r}")
        root = ET.fromstring(response.body)
        expect(root.tag == f"{MODELS_NS}UserProfile", f"root element {root.tag}")

    def duplicate(self) -> None:
        expect_status(self.create("acme", "create-profile.json"), 409)

    def vendor_sample(self) -> None:
        # The vendor's own sample breaks its rules: a 400 naming each field.
        response = self.create("acme", "vendor/create-profile-request.json")
        expect_status(response, 400)
        expect(response.json().get("ModelState"), f"no ModelState: {response.summary()}")

    def fault(self) -> None:
        rule = (self.fixtures / "control/fault-503-once.json").read_bytes()
        added = self.request("POST", "/_sandbox/faults", rule, "application/json")
        expect_status(added, 201)
        wanted = json.loads(rule)["respond"]
        response = self.create("acme", "create-profile.json")
        expect_status(response, wanted["status"])
        retry_after = response.headers.get("Retry-After")
        expect(retry_after == wanted["headers"]["Retry-After"], f"Retry-After {retry_after!r}")

    def journal(self) -> None:
        response = self.request("GET", "/_sandbox/requests/count?clientId=acme")
        expect_status(response, 200)
        count = response.json().get("count")
        expect(count == self.sent["acme"], f"count {count}, sent {self.sent['acme']}")

    def reset(self) -> None:
        expect(self.profile_path, "no profile was created")
        expect_status(self.request("GET", self.profile_path), 200)
        expect_status(self.request("POST", "/_sandbox/reset"), 200)
        expect_status(self.request("GET", self.profile_path), 404)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    checks = Checks(argv[1], Path(argv[2]))
    steps: list[tuple[str, Callable[[], None]]] = [
        ("health", checks.health),
        ("create-json-201", checks.create_json),
        ("create-xml-201", checks.create_xml),
        ("duplicate-409", checks.duplicate),
        ("vendor-sample-400", checks.vendor_sample),
        ("fault-503", checks.fault),
        ("journal-count", checks.journal),
        ("reset", checks.reset),
    ]
    failed = 0
    for name, step in steps:
        try:
            step()
        except Exception as error:  # any error is this check's failure; the next ones still run
            failed += 1
            detail = str(error) if isinstance(error, CheckFailed) else f"{type(error).__name__}: {error}"
            print(f"FAIL {name}: {' '.join(detail.split())}", flush=True)
        else:
            print(f"PASS {name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
