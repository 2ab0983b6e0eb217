"""The vendor's Authorization schemes: PNAUTHINFO3 signatures and OAuth 2.0 bearer tokens.

Modes (``SANDBOX_AUTH_MODE``): ``off`` checks nothing; ``lenient`` (the default) wants a
well-formed header of a known scheme and takes its UserId, checking no secret, signature or time;
``strict`` checks clients, users, secrets, signatures, time windows and permissions against
``SANDBOX_AUTH_FILE``. Authentication runs before a request's body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from .clock import current_clock
from .errors import Forbidden, NotFound, Unauthorized

MODES = ("off", "lenient", "strict")
HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}
SCHEME = re.compile(r"PNAUTHINFO3-(?P<keyed>HMAC-)?(?P<hash>SHA256|SHA384|SHA512)", re.IGNORECASE)
PARAMETERS = re.compile(r"Credential=(?P<user>[^/\s]+)/(?P<issued>\S+)\s+Signature=(?P<signature>\S+)")
REALM = "https://pm.mypreferences.com"
TOKEN_PATH = "/oauth/token"
# Live bearer tokens kept at most; issuing beyond it drops the oldest.
MAX_TOKENS = 10_000

# The vendor's documented causes of a 401.
MISSING = "Missing Authorization Header"
BAD_SCHEME = "The scheme is invalid"
BAD_DATE = "The specified date does not match an expected ISO 8601 format"
SKEWED = "The difference between the issued timestamp and the current time is too large"
UNAUTHENTICATED = "Unable to authenticate request"

# What each HTTP method needs: reads and writes are separate permissions.
PERMISSIONS = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}


def signing_input(client_id: str, user_id: str, issued: str) -> bytes:
    """What a PNAUTHINFO3 signature signs: ``clientId:userId:timestamp``, the timestamp exactly as
    sent in the header. Seen in public client code, not in the vendor's documentation: if the
    vendor's differs, this is the one function to correct."""
    return f"{client_id}:{user_id}:{issued}".encode()


def signature(
    client_id: str, user_id: str, issued: str, secret: str, *, hash_name: str = "SHA256", keyed: bool = True
) -> str:
    """The Base64 signature: HMAC(secret, input) for the keyed schemes; for the un-keyed ones,
    whose input the vendor does not document, the hash of the input followed by ``:secret``."""
    message = signing_input(client_id, user_id, issued)
    digest = (
        hmac.new(secret.encode(), message, HASHES[hash_name]).digest()
        if keyed
        else HASHES[hash_name](message + b":" + secret.encode()).digest()
    )
    return base64.b64encode(digest).decode()


def pnauthinfo3_header(
    client_id: str,
    user_id: str,
    secret: str,
    moment: datetime | None = None,
    *,
    hash_name: str = "SHA256",
    keyed: bool = True,
) -> str:
    """A valid ``Authorization`` header value for these credentials, issued at ``moment`` (default:
    now, real time), as a test signs requests: ``PNAUTHINFO3-HMAC-SHA256 Credential=... Signature=...``."""
    issued = (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    scheme = f"PNAUTHINFO3-{'HMAC-' if keyed else ''}{hash_name}"
    value = signature(client_id, user_id, issued, secret, hash_name=hash_name, keyed=keyed)
    return f"{scheme} Credential={user_id}/{issued} Signature={value}"


@dataclass(frozen=True)
class Token:
    """An issued bearer token: for whom, and until when."""

    client_id: str
    user_id: str
    expires: datetime


class Authority:
    """The strict mode's directory (clients, users, secrets, permissions, OAuth clients) and the
    bearer tokens issued, in any mode."""

    def __init__(self, directory: Mapping[str, Any]) -> None:
        self.clients: Mapping[str, Any] = directory.get("clients", {})
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}

    def user(self, client_id: str, user_id: str) -> Mapping[str, Any] | None:
        """A configured user of a configured client, or None."""
        return self.clients.get(client_id, {}).get("users", {}).get(user_id)

    def issue(self, client_id: str, user_id: str, now: datetime, lifetime: timedelta) -> str:
        """A new opaque bearer token for ``user_id`` of ``client_id``. Expired tokens are dropped
        here, and past ``MAX_TOKENS`` live ones the oldest go first, so the table stays bounded."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            for value in [value for value, held in self._tokens.items() if now >= held.expires]:
                del self._tokens[value]
            while len(self._tokens) >= MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]
            self._tokens[token] = Token(client_id, user_id, now + lifetime)
        return token

    def forget_tokens(self) -> None:
        """Revoke every bearer token (a full reset)."""
        with self._lock:
            self._tokens.clear()

    def token(self, value: str, now: datetime) -> Token | None:
        """The live token ``value`` names, or None (an expired one is forgotten)."""
        with self._lock:
            token = self._tokens.get(value)
            if token is not None and now >= token.expires:
                del self._tokens[value]
                return None
            return token

    def oauth_client(self, client_id: str, oauth_id: str, oauth_secret: str) -> bool:
        """Whether the OAuth client credentials are configured for ``client_id``."""
        configured = self.clients.get(client_id, {}).get("oauth", [])
        return any(
            hmac.compare_digest(entry["client_id"].encode(), oauth_id.encode())
            and hmac.compare_digest(entry["client_secret"].encode(), oauth_secret.encode())
            for entry in configured
        )


def _refuse(cause: str) -> Unauthorized:
    return Unauthorized(
        cause,
        headers={
            "WWW-Authenticate": f'PNAUTHINFO3 realm="{REALM}"',
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
        },
    )


def authenticate(client_id: str) -> str | None:
    """The UserId of the current vendor request, or a 401/403/404 as the mode decides (None: off)."""
    config = current_app.config
    mode = config["AUTH_MODE"]
    if mode == "off":
        return None
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise _refuse(MISSING)
    scheme, _, parameters = header.partition(" ")
    strict = mode == "strict"
    authority = current_authority()
    if strict and client_id not in authority.clients:
        raise NotFound(f"The clientId '{client_id}' is not valid.")
    if scheme.lower() == "bearer":
        user_id = _bearer(parameters.strip(), client_id, strict)
    else:
        user_id = _pnauthinfo3(scheme, parameters, client_id, strict)
    if strict:
        needed = PERMISSIONS.get(request.method, "write")
        # Both schemes above let only a configured user through in strict mode; `or {}` is for the type.
        user = authority.user(client_id, user_id) or {}
        if needed not in user.get("permissions", []):
            raise Forbidden(f"The user '{user_id}' lacks the '{needed}' permission for this request.")
    return user_id


def _pnauthinfo3(scheme: str, parameters: str, client_id: str, strict: bool) -> str:
    found = SCHEME.fullmatch(scheme)
    if found is None:
        raise _refuse(BAD_SCHEME)
    given = PARAMETERS.fullmatch(parameters.strip())
    if given is None:
        raise _refuse(UNAUTHENTICATED)
    user_id = given["user"]
    if not strict:
        return user_id
    now = current_clock().now()
    issued = _issued(given["issued"], now)
    if abs(now - issued) > timedelta(seconds=current_app.config["AUTH_WINDOW_SECONDS"]):
        raise _refuse(SKEWED)
    user = current_authority().user(client_id, user_id)
    if user is None:
        raise _refuse(UNAUTHENTICATED)
    expected = signature(
        client_id,
        user_id,
        given["issued"],
        user["secret"],
        hash_name=found["hash"].upper(),
        keyed=bool(found["keyed"]),
    )
    if not hmac.compare_digest(expected.encode(), given["signature"].encode()):
        raise _refuse(UNAUTHENTICATED)
    return user_id


def _issued(text: str, now: datetime) -> datetime:
    """The header's timestamp: ISO 8601 (no zone: UTC), not in the future."""
    try:
        issued = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(BAD_DATE) from None
    issued = issued if issued.tzinfo else issued.replace(tzinfo=UTC)
    if issued > now:
        raise _refuse(BAD_DATE)
    return issued


def _bearer(value: str, client_id: str, strict: bool) -> str:
    if not value:
        raise _refuse(UNAUTHENTICATED)
    token = current_authority().token(value, current_clock().now())
    if token is None:
        if strict:
            raise _refuse(UNAUTHENTICATED)
        return current_app.config["DEFAULT_USER"]  # lenient: any well-formed token will do
    if token.client_id != client_id:
        raise _refuse(UNAUTHENTICATED)
    return token.user_id


# --- the OAuth token endpoint ---------------------------------------------------------------

bp = Blueprint("oauth", __name__)


@bp.post(TOKEN_PATH)
def issue_token() -> Response:
    """OAuth 2.0 client credentials: ``grant_type=client_credentials``, ``scope=ClientId/UserId``,
    the OAuth client's id and secret in a Basic header or the form body. 200 with an expiring
    bearer token; RFC 6749 errors otherwise. (Strict mode checks the credentials.)"""
    form = request.form
    oauth_id, oauth_secret = _client_credentials()
    if form.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "grant_type must be client_credentials.")
    client_id, _, user_id = form.get("scope", "").partition("/")
    if not client_id or not user_id:
        return _oauth_error("invalid_scope", "scope must be ClientId/UserId.")
    if not oauth_id or not oauth_secret:
        return _oauth_error("invalid_client", "Client credentials are missing.", 401)
    authority = current_authority()
    if current_app.config["AUTH_MODE"] == "strict" and not (
        authority.oauth_client(client_id, oauth_id, oauth_secret) and authority.user(client_id, user_id)
    ):
        return _oauth_error("invalid_client", "The client credentials or the scope are not valid.", 401)
    lifetime = current_app.config["AUTH_TOKEN_SECONDS"]
    token = authority.issue(client_id, user_id, current_clock().now(), timedelta(seconds=lifetime))
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": f"{client_id}/{user_id}",
    }
    return Response(json.dumps(body), 200, mimetype="application/json", headers={"Cache-Control": "no-store"})


def _client_credentials() -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        oauth_id, _, oauth_secret = decoded.partition(":")
        return oauth_id, oauth_secret
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _oauth_error(code: str, description: str, status: int = 400) -> Response:
    body = {"error": code, "error_description": description}
    return Response(
        json.dumps(body), status, mimetype="application/json", headers={"Cache-Control": "no-store"}
    )


# --- wiring ---------------------------------------------------------------------------------


def load_directory(path: str | None) -> dict:
    """The strict mode's directory from ``path`` (JSON); ValueError, one line, if unusable."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            directory = json.load(file)
        for client_id, client in directory["clients"].items():
            for user_id, user in client.get("users", {}).items():
                if not isinstance(user.get("secret"), str) or not isinstance(
                    user.get("permissions", []), list
                ):
                    raise ValueError(
                        f"user '{user_id}' of '{client_id}' needs a secret and a permissions list"
                    )
        return directory
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"SANDBOX_AUTH_FILE {path}: {error}") from None


def check(app: Flask) -> None:
    """Refuse an unknown mode, or strict mode without a directory."""
    mode = app.config["AUTH_MODE"]
    if mode not in MODES:
        raise ValueError(f"SANDBOX_AUTH_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "strict" and not app.config["AUTH_FILE"]:
        raise ValueError("SANDBOX_AUTH_MODE=strict needs SANDBOX_AUTH_FILE")


def init_app(app: Flask) -> None:
    """Give ``app`` its authority (the strict directory, the issued tokens) and the token endpoint."""
    check(app)
    app.extensions["sandbox.auth"] = Authority(load_directory(app.config["AUTH_FILE"]))
    app.extensions["sandbox.journal"].secret_paths.add(TOKEN_PATH)
    app.register_blueprint(bp)


def current_authority() -> Authority:
    """The authority of the application handling the current request."""
    return current_app.extensions["sandbox.auth"]


def current_user() -> str:
    """Who makes the current request: its authenticated UserId, else ``SANDBOX_DEFAULT_USER``."""
    return g.get("user_id") or current_app.config["DEFAULT_USER"]
