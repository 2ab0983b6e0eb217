"""Black-box checks of freshly started sandboxes over HTTP, for ``scripts/container-check``.

Usage: ``python3 scripts/container_checks.py BASE_URL FIXTURES_DIR``
   or: ``python3 scripts/container_checks.py --shared URL_A URL_B FIXTURES_DIR``
   or: ``python3 scripts/container_checks.py --compose COMPOSE_FILE``

The first checks one sandbox. ``--shared`` checks two sandboxes that share one Redis
(docker-compose.yml's ``sandbox-a`` and ``sandbox-b``) as one sandbox: what is written through one
is read, refused and reset through the other. ``--compose`` checks the compose file's shape.

Prints one line per check, ``PASS name`` or ``FAIL name: detail``, and exits 1 when any failed.
The checks run in order and build on each other (the journal counts what the earlier ones sent),
so the sandboxes must be new. Standard library only (but ``--compose``, which reads YAML with
PyYAML, a dependency of podman-compose): this runs on the host, outside any venv.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


class SharedChecks:
    """Two sandboxes on one Redis, checked as one sandbox: each step writes through one and looks
    through the other."""

    CLIENT_ID = "acme"
    FAULTED = 5  # the fault rule's ``times``
    REQUESTS = 40  # matching requests sent at once, half to each sandbox
    MARK = "X-Check-Fault"  # the injected header that tells a faulted answer from any other 503

    def __init__(self, url_a: str, url_b: str, fixtures: Path) -> None:
        self.a = Checks(url_a, fixtures)
        self.b = Checks(url_b, fixtures)
        self.profile_path: str | None = None

    def health(self) -> None:
        self.a.health()
        self.b.health()

    def create_read(self) -> None:
        created = self.a.create(self.CLIENT_ID, "create-profile.json")
        expect_status(created, 201)
        location = created.headers.get("Location")
        expect(location, "no Location header")
        self.profile_path = path = urllib.parse.urlsplit(str(location)).path
        through_b = self.b.request("GET", path)
        expect_status(through_b, 200)
        expect(
            through_b.json() == created.json(),
            f"GET {path} through B differs from the profile A created: {through_b.summary()}",
        )

    def duplicate(self) -> None:
        # The profile's AlternateId pair, taken through A, is refused through B.
        expect_status(self.b.create(self.CLIENT_ID, "create-profile.json"), 409)

    def fault_times(self) -> None:
        path = self.created()
        rule = {
            "match": {"clientId": self.CLIENT_ID, "operation": "get_profile"},
            "respond": {"status": 503, "headers": {self.MARK: "1"}},
            "times": self.FAULTED,
        }
        added = self.a.request("POST", "/_sandbox/faults", json.dumps(rule).encode(), "application/json")
        expect_status(added, 201)
        rule_id = added.json().get("id")
        expect(rule_id, f"no rule id: {added.summary()}")

        def get(number: int) -> Response:
            sandbox = self.a if number % 2 else self.b
            return sandbox.request("GET", path)

        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(get, range(self.REQUESTS)))
        faulted = [answer for answer in answers if answer.headers.get(self.MARK)]
        others = Counter(answer.status for answer in answers if not answer.headers.get(self.MARK))
        expect(
            len(faulted) == self.FAULTED and set(others) == {200},
            f"{len(faulted)} of {self.REQUESTS} faulted (wanted {self.FAULTED}), "
            f"the others' statuses {dict(others)}",
        )
        # Both sandboxes counted on the one rule: B sees what A's rule did.
        report = self.b.request("GET", f"/_sandbox/faults/{rule_id}")
        expect_status(report, 200)
        seen = {key: report.json().get(key) for key in ("hits", "remaining", "state")}
        wanted = {"hits": self.FAULTED, "remaining": 0, "state": "spent"}
        expect(seen == wanted, f"the rule through B says {seen}, wanted {wanted}")

    def reset(self) -> None:
        path = self.created()
        expect_status(self.a.request("GET", path), 200)
        expect_status(self.b.request("POST", "/_sandbox/reset"), 200)
        expect_status(self.a.request("GET", path), 404)

    def created(self) -> str:
        """The path of the profile created through A (a failure if there is none)."""
        if not self.profile_path:
            raise CheckFailed("no profile was created")
        return self.profile_path


def compose_shape(path: Path) -> None:
    """docker-compose.yml: a Redis, and two sandboxes built from the Dockerfile that use it and are
    published on 127.0.0.1 (the values as they are without any of the file's variables set)."""
    import yaml  # PyYAML: podman-compose's own dependency, so present wherever this runs

    compose = yaml.safe_load(path.read_text())
    expect(isinstance(compose, dict), "not a YAML mapping")
    services = compose.get("services") or {}
    expect(set(services) == {"redis", "sandbox-a", "sandbox-b"}, f"services {sorted(services)}")
    expect(services["redis"].get("image"), "redis: no image")
    expect(services["redis"].get("healthcheck", {}).get("test"), "redis: no healthcheck")
    for name in ("sandbox-a", "sandbox-b"):
        service = services[name]
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        store = environment.get("SANDBOX_STORE")
        expect(store == "redis://redis:6379/0", f"{name}: SANDBOX_STORE {store!r}")
        workers = str(environment.get("SANDBOX_WORKERS"))
        expect(workers.isdigit() and int(workers) > 1, f"{name}: SANDBOX_WORKERS {workers!r}")
        expect("build" in service, f"{name}: not built from the Dockerfile")
        expect("redis" in (service.get("depends_on") or []), f"{name}: does not depend on redis")
        ports = [str(port) for port in service.get("ports") or []]
        expect(
            len(ports) == 1 and ports[0].startswith("127.0.0.1:") and ports[0].endswith(":8080"),
            f"{name}: ports {ports}",
        )


def run(steps: list[tuple[str, Callable[[], None]]]) -> int:
    """Run ``steps`` in order, printing PASS or FAIL for each; 1 if any failed."""
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


def main(argv: list[str]) -> int:
    usage = "\n".join(line for line in __doc__.strip().splitlines()[2:5])
    if len(argv) == 3 and argv[1] == "--compose":
        return run([("compose-shape", functools.partial(compose_shape, Path(argv[2])))])
    if len(argv) == 5 and argv[1] == "--shared":
        shared = SharedChecks(argv[2], argv[3], Path(argv[4]))
        return run(
            [
                ("shared-health", shared.health),
                ("shared-create-a-read-b", shared.create_read),
                ("shared-duplicate-b-409", shared.duplicate),
                ("shared-fault-times", shared.fault_times),
                ("shared-reset-b", shared.reset),
            ]
        )
    if len(argv) != 3 or argv[1].startswith("--"):
        print(usage, file=sys.stderr)
        return 2
    checks = Checks(argv[1], Path(argv[2]))
    return run(
        [
            ("health", checks.health),
            ("create-json-201", checks.create_json),
            ("create-xml-201", checks.create_xml),
            ("duplicate-409", checks.duplicate),
            ("vendor-sample-400", checks.vendor_sample),
            ("fault-503", checks.fault),
            ("journal-count", checks.journal),
            ("reset", checks.reset),
        ]
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
