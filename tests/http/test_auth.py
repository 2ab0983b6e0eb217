"""Authentication over real HTTP: each mode, every 401 cause, signatures, windows, tokens, 403, 404."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from helpers import FIXTURES, Served, minimal_profile, xml_of
from mypreferences_sandbox.domain.auth import pnauthinfo3_header, signature, signing_input
from mypreferences_sandbox.testing.control_client import ControlClient

DIRECTORY = json.loads((FIXTURES / "auth.json").read_text())
OAUTH = DIRECTORY["clients"]["acme"]["oauth"][0]
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def create(
    url: str, authorization: str | None = None, body: object = None, **headers: str
) -> requests.Response:
    sent = {"Content-Type": "application/json", **headers}
    if authorization is not None:
        sent["Authorization"] = authorization
    data = json.dumps(minimal_profile() if body is None else body)
    return requests.post(f"{url}/acme/Profile", data=data, headers=sent, timeout=10)


@pytest.fixture(scope="module")
def lenient():
    with Served() as served:
        yield served


@pytest.fixture(scope="module")
def strict():
    with Served({"AUTH_MODE": "strict", "AUTH_FILE": str(FIXTURES / "auth.json")}) as served:
        ControlClient(served.url).set_clock(NOW)
        yield served


def signed(user: str = "alice", secret: str = "alice-secret", moment: datetime = NOW, **options) -> str:
    return pnauthinfo3_header("acme", user, secret, moment, **options)


def unsigned(hash_name: str = "SHA256") -> str:
    """A signature of the form ``hash_name`` gives (Base64 of its digest size), made with no secret."""
    return base64.b64encode(bytes(hashlib.new(hash_name).digest_size)).decode()


# --- off and lenient ------------------------------------------------------------------------


def test_off_checks_nothing():
    with Served({"AUTH_MODE": "off"}) as served:
        response = create(served.url)

    assert response.status_code == 201
    assert response.json()["Edited"]["CreatedBy"] == "sandbox"


@pytest.mark.parametrize(
    ("authorization", "cause"),
    [
        (None, "Missing Authorization Header"),
        ("", "Missing Authorization Header"),
        ("Basic YWxpY2U6c2VjcmV0", "The scheme is invalid"),
        ("PNAUTHINFO3-HMAC-MD5 Credential=alice/2026-01-01T00:00:00 Signature=x", "The scheme is invalid"),
        ("PNAUTHINFO3-HMAC-SHA256 Credential=alice Signature=x", "Unable to authenticate request"),
        ("PNAUTHINFO3-HMAC-SHA256 Credential=alice/2026-01-01T00:00:00", "Unable to authenticate request"),
        ("Bearer", "Unable to authenticate request"),
    ],
)
def test_lenient_wants_a_well_formed_header(lenient, authorization, cause):
    response = create(lenient.url, authorization)

    assert response.status_code == 401
    assert response.json() == {"Message": cause}
    assert response.headers["WWW-Authenticate"] == 'PNAUTHINFO3 realm="https://pm.mypreferences.com"'
    assert (response.headers["Cache-Control"], response.headers["Pragma"], response.headers["Expires"]) == (
        "no-cache",
        "no-cache",
        "-1",
    )
    assert lenient.profiles("acme") == [] or all(
        p["Edited"]["CreatedBy"] != "nobody" for p in lenient.profiles("acme")
    )


@pytest.mark.parametrize(
    "scheme", ["PNAUTHINFO3-HMAC-SHA256", "pnauthinfo3-hmac-sha512", "PnAuthInfo3-SHA384"]
)
def test_lenient_takes_the_user_id_and_warns_that_it_checked_no_signature(lenient, scheme):
    issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    response = create(lenient.url, f"{scheme} Credential=carol/{issued} Signature={unsigned(scheme[-6:])}")

    assert response.status_code == 201
    assert response.json()["Edited"]["CreatedBy"] == response.json()["Edited"]["ModifiedBy"] == "carol"
    assert response.raw.headers.getlist("X-Sandbox-Warning") == [
        "PNAUTHINFO3 signature not verified: no secret is configured for UserId 'carol' of 'acme' "
        "(SANDBOX_AUTH_FILE, SANDBOX_AUTH_SECRET)"
    ]


@pytest.mark.parametrize(
    ("issued", "cause"),
    [
        ("not-even-a-date", "The specified date does not match an expected ISO 8601 format"),
        ("2026-13-01T00:00:00", "The specified date does not match an expected ISO 8601 format"),
        ("+1h", "The specified date does not match an expected ISO 8601 format"),
        ("-16m", "The difference between the issued timestamp and the current time is too large"),
    ],
)
def test_lenient_checks_what_needs_no_secret_the_timestamp_and_its_window(lenient, issued, cause):
    offsets = {"+1h": timedelta(hours=1), "-16m": -timedelta(minutes=16)}
    if issued in offsets:
        issued = (datetime.now(UTC) + offsets[issued]).strftime("%Y-%m-%dT%H:%M:%S")

    response = create(
        lenient.url, f"PNAUTHINFO3-HMAC-SHA256 Credential=carol/{issued} Signature={unsigned()}"
    )

    assert (response.status_code, response.json()) == (401, {"Message": cause})


@pytest.mark.parametrize(
    ("scheme", "value"),
    [
        ("PNAUTHINFO3-HMAC-SHA256", "***"),
        ("PNAUTHINFO3-HMAC-SHA256", "abc"),
        ("PNAUTHINFO3-HMAC-SHA256", "dGVzdA=="),  # Base64, of four bytes
        ("PNAUTHINFO3-HMAC-SHA256", unsigned().rstrip("=")),  # unpadded
        ("PNAUTHINFO3-HMAC-SHA256", unsigned()[:-1] + "*"),
        ("PNAUTHINFO3-HMAC-SHA256", unsigned("SHA512")),
        ("PNAUTHINFO3-HMAC-SHA512", unsigned()),
        ("PNAUTHINFO3-SHA384", unsigned("SHA512")),
    ],
    ids=[
        "stars",
        "abc",
        "four-bytes",
        "unpadded",
        "not-base64",
        "sha512-for-256",
        "sha256-for-512",
        "sha512-for-384",
    ],
)
@pytest.mark.parametrize("mode", ["lenient", "strict"])
def test_a_signature_no_secret_can_make_is_refused_in_every_mode(request, mode, scheme, value):
    served = request.getfixturevalue(mode)
    issued = (NOW if mode == "strict" else datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S")

    response = create(served.url, f"{scheme} Credential=alice/{issued} Signature={value}")

    assert (response.status_code, response.json()) == (401, {"Message": "Unable to authenticate request"})


def test_lenient_verifies_the_signature_where_a_secret_is_configured():
    with Served({"AUTH_FILE": str(FIXTURES / "auth.json")}) as served:
        now = datetime.now(UTC)
        good = create(served.url, signed(moment=now))
        forged = create(served.url, signed(secret="wrong", moment=now))

    assert (good.status_code, good.raw.headers.getlist("X-Sandbox-Warning")) == (201, [])
    assert (forged.status_code, forged.json()) == (401, {"Message": "Unable to authenticate request"})


def test_lenient_verifies_signatures_made_with_the_shared_secret_for_any_client_and_user():
    with Served({"AUTH_SECRET": "shared"}) as served:
        now = datetime.now(UTC)
        good = create(served.url, pnauthinfo3_header("acme", "anyone", "shared", now))
        forged = create(served.url, pnauthinfo3_header("acme", "anyone", "guessed", now))

    assert (good.status_code, good.raw.headers.getlist("X-Sandbox-Warning")) == (201, [])
    assert good.json()["Edited"]["CreatedBy"] == "anyone"
    assert (forged.status_code, forged.json()) == (401, {"Message": "Unable to authenticate request"})


def test_strict_mode_takes_no_shared_secret(strict):
    with Served(
        {"AUTH_MODE": "strict", "AUTH_FILE": str(FIXTURES / "auth.json"), "AUTH_SECRET": "shared"}
    ) as served:
        ControlClient(served.url).set_clock(NOW)
        response = create(served.url, pnauthinfo3_header("acme", "stranger", "shared", NOW))

    assert (response.status_code, response.json()) == (401, {"Message": "Unable to authenticate request"})


def test_lenient_accepts_any_bearer_token_with_a_warning(lenient):
    response = create(lenient.url, "Bearer anything")

    assert response.status_code == 201
    assert response.json()["Edited"]["CreatedBy"] == "sandbox"
    assert (
        response.headers["X-Sandbox-Warning"] == "bearer token not issued by this sandbox: accepted unchecked"
    )


def test_401_in_xml(lenient):
    response = create(lenient.url, None, Accept="application/xml")

    assert response.status_code == 401
    assert xml_of(response).findtext("Message") == "Missing Authorization Header"


def test_authentication_comes_before_the_body(lenient):
    response = requests.post(
        f"{lenient.url}/acme/Profile",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 401


# --- strict ---------------------------------------------------------------------------------


def test_signing_input_and_signature_are_as_documented():
    expected = base64.b64encode(
        hmac.new(b"s", b"acme:alice:2030-01-01T12:00:00", hashlib.sha256).digest()
    ).decode()

    assert signing_input("acme", "alice", "2030-01-01T12:00:00") == b"acme:alice:2030-01-01T12:00:00"
    assert signature("acme", "alice", "2030-01-01T12:00:00", "s") == expected
    assert pnauthinfo3_header("acme", "alice", "s", NOW) == (
        f"PNAUTHINFO3-HMAC-SHA256 Credential=alice/2030-01-01T12:00:00 Signature={expected}"
    )


@pytest.mark.parametrize("hash_name", ["SHA256", "SHA384", "SHA512"])
@pytest.mark.parametrize("keyed", [True, False])
def test_strict_accepts_a_valid_signature_of_every_variant(strict, hash_name, keyed):
    response = create(strict.url, signed(hash_name=hash_name, keyed=keyed))

    assert response.status_code == 201, response.text
    assert response.json()["Edited"]["CreatedBy"] == "alice"


def test_strict_scheme_name_is_case_insensitive(strict):
    header = signed()
    scheme, rest = header.split(" ", 1)

    assert create(strict.url, f"{scheme.lower()} {rest}").status_code == 201


@pytest.mark.parametrize(
    ("authorization", "cause"),
    [
        (signed(secret="wrong"), "Unable to authenticate request"),
        (signed(user="mallory", secret="x"), "Unable to authenticate request"),
        (signed().replace("HMAC-SHA256", "HMAC-SHA512"), "Unable to authenticate request"),
        (signed(moment=NOW - timedelta(seconds=899)), None),
        (
            signed(moment=NOW - timedelta(seconds=901)),
            "The difference between the issued timestamp and the current time is too large",
        ),
        (
            signed(moment=NOW + timedelta(seconds=1)),
            "The specified date does not match an expected ISO 8601 format",
        ),
        (
            "PNAUTHINFO3-HMAC-SHA256 Credential=alice/yesterday Signature=x",
            "The specified date does not match an expected ISO 8601 format",
        ),
    ],
    ids=[
        "bad-signature",
        "unknown-user",
        "wrong-hash",
        "window-inside",
        "window-outside",
        "future",
        "not-a-date",
    ],
)
def test_strict_causes(strict, authorization, cause):
    response = create(strict.url, authorization)

    if cause is None:
        assert response.status_code == 201
    else:
        assert response.status_code == 401
        assert response.json() == {"Message": cause}


def test_strict_window_is_configurable():
    config = {"AUTH_MODE": "strict", "AUTH_FILE": str(FIXTURES / "auth.json"), "AUTH_WINDOW_SECONDS": 60}
    with Served(config) as served:
        ControlClient(served.url).set_clock(NOW)
        inside = create(served.url, signed(moment=NOW - timedelta(seconds=60)))
        outside = create(served.url, signed(moment=NOW - timedelta(seconds=61)))

    assert (inside.status_code, outside.status_code) == (201, 401)


def test_strict_unknown_client_is_404(strict):
    response = requests.get(
        f"{strict.url}/initech/Profile/1", headers={"Authorization": signed()}, timeout=10
    )

    assert response.status_code == 404
    assert response.json() == {"Message": "The clientId 'initech' is not valid."}


def test_strict_user_of_another_client_is_refused(strict):
    header = pnauthinfo3_header("acme", "gina", "gina-secret", NOW)

    assert create(strict.url, header).status_code == 401


def test_strict_permissions_give_403(strict):
    reader = signed(user="reader", secret="reader-secret")
    created = create(strict.url, signed()).json()

    read = requests.get(
        f"{strict.url}/acme/Profile/{created['ProfileId']}", headers={"Authorization": reader}, timeout=10
    )
    write = create(strict.url, reader, Accept="text/xml")

    assert read.status_code == 200
    assert write.status_code == 403
    assert (
        xml_of(write).findtext("Message")
        == "The user 'reader' lacks the 'write' permission for this request."
    )


def test_strict_401_comes_before_400(strict):
    response = create(strict.url, signed(secret="wrong"), body={"CustomerType": 5})

    assert response.status_code == 401


# --- OAuth client credentials ---------------------------------------------------------------


def token(url: str, scope: str = "acme/alice", basic: bool = True, **form: str) -> requests.Response:
    fields = {"grant_type": "client_credentials", "scope": scope, **form}
    headers = {}
    if basic:
        pair = f"{OAUTH['client_id']}:{OAUTH['client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        fields |= {"client_id": OAUTH["client_id"], "client_secret": OAUTH["client_secret"]}
    return requests.post(f"{url}/oauth/token", data=fields, headers=headers, timeout=10)


@pytest.mark.parametrize("basic", [True, False], ids=["basic-header", "form-body"])
def test_token_flow(strict, basic):
    issued = token(strict.url, basic=basic)

    body = issued.json()
    assert issued.status_code == 200
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "acme/alice")
    created = create(strict.url, f"Bearer {body['access_token']}")
    assert created.status_code == 201
    assert created.json()["Edited"]["CreatedBy"] == "alice"


def test_token_expires_on_the_sandbox_clock(strict):
    bearer = f"Bearer {token(strict.url).json()['access_token']}"
    control = ControlClient(strict.url)

    control.advance_clock(3599)
    before = create(strict.url, bearer).status_code
    control.advance_clock(2)
    after = create(strict.url, bearer).status_code
    control.set_clock(NOW)

    assert (before, after) == (201, 401)


def test_token_is_for_its_client_only(strict):
    bearer = f"Bearer {token(strict.url).json()['access_token']}"

    response = requests.get(f"{strict.url}/globex/Profile/1", headers={"Authorization": bearer}, timeout=10)

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "acme"}, 400, "invalid_scope"),
        ({"scope": "acme/mallory"}, 401, "invalid_client"),
        ({"client_secret": "wrong", "basic": False}, 401, "invalid_client"),
    ],
)
def test_token_errors(strict, change, status, error):
    change = dict(change)
    basic = change.pop("basic", True)
    scope = change.pop("scope", "acme/alice")
    if not basic:
        response = requests.post(
            f"{strict.url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "scope": scope,
                "client_id": OAUTH["client_id"],
                **change,
            },
            timeout=10,
        )
    else:
        response = token(strict.url, scope=scope, **change)

    assert response.status_code == status
    assert response.json()["error"] == error


def form_token(url: str, scope: str, secret: str = "y") -> requests.Response:
    """A token request with made-up client credentials in the form body."""
    fields = {"grant_type": "client_credentials", "scope": scope, "client_id": "x", "client_secret": secret}
    return requests.post(f"{url}/oauth/token", data=fields, timeout=10)


def test_lenient_issues_tokens_for_any_credentials(lenient):
    response = form_token(lenient.url, "acme/dave")

    created = create(lenient.url, f"Bearer {response.json()['access_token']}")
    assert created.json()["Edited"]["CreatedBy"] == "dave"


def test_secrets_never_reach_the_journal(strict):
    control = ControlClient(strict.url)
    control.clear_requests()
    token(strict.url)
    token(strict.url, basic=False)
    create(strict.url, signed())

    journal = json.dumps(control.requests())

    for secret in (OAUTH["client_secret"], "alice-secret", signed().split("Signature=")[1]):
        assert secret not in journal
    assert "[redacted]" in journal


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"AUTH_MODE": "sometimes"}, "SANDBOX_AUTH_MODE must be one of off, lenient, strict"),
        ({"AUTH_MODE": "strict"}, "SANDBOX_AUTH_MODE=strict needs SANDBOX_AUTH_FILE"),
        ({"AUTH_MODE": "strict", "AUTH_FILE": "/nonexistent.json"}, "SANDBOX_AUTH_FILE /nonexistent.json"),
    ],
)
def test_unusable_auth_settings_are_refused(config, message):
    from mypreferences_sandbox import create_app

    with pytest.raises(ValueError, match=message):
        create_app(config)


def test_refusals_are_journaled(strict):
    control = ControlClient(strict.url)
    control.clear_requests()

    create(strict.url, signed(secret="wrong"))
    create(strict.url, signed(user="reader", secret="reader-secret"))

    assert [(e["status"], e["error"]["Message"]) for e in control.requests()] == [
        (401, "Unable to authenticate request"),
        (403, "The user 'reader' lacks the 'write' permission for this request."),
    ]


def test_authentication_comes_before_the_body_is_read_even_when_too_large(lenient):
    body = b'{"CustomerType": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    response = requests.post(
        f"{lenient.url}/acme/Profile", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )

    assert response.status_code == 401


def test_a_token_request_stopped_by_a_fault_keeps_its_secret_out_of_the_journal(lenient):
    control = ControlClient(lenient.url)
    control.add_fault(match={"path": "/oauth/*"}, respond={"status": 503}, times=1)

    refused = form_token(lenient.url, "acme/a", secret="TOPSECRET")

    [entry] = control.requests(path="/oauth/token", status=503)
    assert refused.status_code == 503
    assert entry["body"] == "[redacted]"
    assert "TOPSECRET" not in json.dumps(control.requests())
