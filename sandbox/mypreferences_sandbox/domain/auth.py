"""The vendor's Authorization schemes: PNAUTHINFO3 signatures and OAuth 2.0 bearer tokens.

Modes (``SANDBOX_AUTH_MODE``): ``off`` checks nothing; ``lenient`` (the default) checks what the
vendor would check without a secret (a well-formed header of a known scheme, an ISO 8601 timestamp
neither in the future nor out of the window, a signature that is Base64 of the scheme's hash size)
and verifies a signature only where the user's secret is configured, warning where it is not;
``strict`` checks clients, users, secrets, signatures, time windows and permissions against
``SANDBOX_AUTH_FILE``. Verification takes its inputs explicitly (the header, the clientId, the
method, the time): it knows nothing of HTTP frameworks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..contract.errors import CHALLENGE, Forbidden, NotFound, Unauthorized

MODES = ("off", "lenient", "strict")
HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}
SCHEME = re.compile(r"PNAUTHINFO3-(?P<keyed>HMAC-)?(?P<hash>SHA256|SHA384|SHA512)", re.IGNORECASE)
PARAMETERS = re.compile(r"Credential=(?P<user>[^/\s]+)/(?P<issued>\S+)\s+Signature=(?P<signature>\S+)")
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


class TokenKeeper(Protocol):
    """Where the bearer tokens an authority issued are kept, until they expire or a full reset."""

    def keep(self, value: str, token: Token, now: datetime) -> None:
        """Keep ``token`` as ``value``, dropping the expired ones and, past ``MAX_TOKENS``, the oldest."""

    def find(self, value: str, now: datetime) -> Token | None:
        """The live token ``value`` names, or None (an expired one is forgotten)."""

    def clear(self) -> None:
        """Forget every token."""


class MemoryTokens:
    """The tokens issued, in this process, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}

    def keep(self, value: str, token: Token, now: datetime) -> None:
        """Keep ``token`` as ``value``, dropping the expired ones and, past ``MAX_TOKENS``, the oldest."""
        with self._lock:
            for expired in [key for key, held in self._tokens.items() if now >= held.expires]:
                del self._tokens[expired]
            while len(self._tokens) >= MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]
            self._tokens[value] = token

    def find(self, value: str, now: datetime) -> Token | None:
        """The live token ``value`` names, or None (an expired one is forgotten)."""
        with self._lock:
            token = self._tokens.get(value)
            if token is not None and now >= token.expires:
                del self._tokens[value]
                return None
            return token

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._tokens.clear()


@dataclass(frozen=True)
class Caller:
    """Who calls (None: authentication is off), and what the sandbox let pass unchecked."""

    user: str | None
    warnings: tuple[str, ...] = ()


class Authority:
    """Who may call: the mode, the strict mode's directory (clients, users, secrets, permissions,
    OAuth clients), and the bearer tokens issued, in any mode."""

    def __init__(
        self,
        mode: str,
        directory: Mapping[str, Any],
        *,
        window: timedelta,
        token_lifetime: timedelta,
        default_user: str,
        shared_secret: str | None = None,
        tokens: TokenKeeper | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"SANDBOX_AUTH_MODE must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "strict" and not directory:
            raise ValueError("SANDBOX_AUTH_MODE=strict needs SANDBOX_AUTH_FILE")
        self.mode = mode
        self.clients: Mapping[str, Any] = directory.get("clients", {})
        self.window = window
        self.token_lifetime = token_lifetime
        self.default_user = default_user
        # Lenient mode's secret of every user the directory does not name.
        self.shared_secret = None if mode == "strict" or shared_secret is None else str(shared_secret)
        self.tokens: TokenKeeper = MemoryTokens() if tokens is None else tokens

    @property
    def strict(self) -> bool:
        """Whether clients, users, secrets and permissions are checked."""
        return self.mode == "strict"

    def user(self, client_id: str, user_id: str) -> Mapping[str, Any] | None:
        """A configured user of a configured client, or None."""
        return self.clients.get(client_id, {}).get("users", {}).get(user_id)

    def authenticate(self, header: str, client_id: str, method: str, now: datetime) -> Caller:
        """Who is behind an ``Authorization`` header of a vendor request, or a 401/403/404 as the
        mode decides."""
        if self.mode == "off":
            return Caller(None)
        header = header.strip()
        if not header:
            raise _refuse(MISSING)
        scheme, _, parameters = header.partition(" ")
        if self.strict and client_id not in self.clients:
            raise NotFound(f"The clientId '{client_id}' is not valid.")
        if scheme.lower() == "bearer":
            caller = self._bearer(parameters.strip(), client_id, now)
        else:
            caller = self._pnauthinfo3(scheme, parameters, client_id, now)
        if self.strict:
            needed = PERMISSIONS.get(method, "write")
            # Both schemes let only a configured user through in strict mode; `or {}` is for the type.
            user = self.user(client_id, caller.user or "") or {}
            if needed not in user.get("permissions", []):
                raise Forbidden(f"The user '{caller.user}' lacks the '{needed}' permission for this request.")
        return caller

    def _pnauthinfo3(self, scheme: str, parameters: str, client_id: str, now: datetime) -> Caller:
        """Every mode checks what needs no secret (scheme, parameters, the timestamp and its window,
        the signature's form); the signature is verified where the user's secret is known, and must
        be in strict mode."""
        found = SCHEME.fullmatch(scheme)
        if found is None:
            raise _refuse(BAD_SCHEME)
        given = PARAMETERS.fullmatch(parameters.strip())
        if given is None:
            raise _refuse(UNAUTHENTICATED)
        user_id = given["user"]
        issued = _issued(given["issued"], now)
        if abs(now - issued) > self.window:
            raise _refuse(SKEWED)
        # No secret makes a signature of the wrong form valid, so every mode refuses one.
        if not _digest_shaped(given["signature"], found["hash"].upper()):
            raise _refuse(UNAUTHENTICATED)
        user = self.user(client_id, user_id)
        if user is None and self.shared_secret is not None:
            user = {"secret": self.shared_secret}
        if user is None:
            if self.strict:
                raise _refuse(UNAUTHENTICATED)
            return Caller(
                user_id,
                (
                    f"PNAUTHINFO3 signature not verified: no secret is configured for "
                    f"UserId '{user_id}' of '{client_id}' (SANDBOX_AUTH_FILE, SANDBOX_AUTH_SECRET)",
                ),
            )
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
        return Caller(user_id)

    def _bearer(self, value: str, client_id: str, now: datetime) -> Caller:
        if not value:
            raise _refuse(UNAUTHENTICATED)
        token = self.token(value, now)
        if token is None:
            if self.strict:
                raise _refuse(UNAUTHENTICATED)
            # Lenient: a token this sandbox did not issue (one from the vendor's token API) will do.
            return Caller(self.default_user, ("bearer token not issued by this sandbox: accepted unchecked",))
        if token.client_id != client_id:
            raise _refuse(UNAUTHENTICATED)
        return Caller(token.user_id)

    def grant(
        self, client_id: str, user_id: str, oauth_id: str, oauth_secret: str, now: datetime
    ) -> str | None:
        """A bearer token for the OAuth client credentials and scope, or None when strict mode
        does not know them (other modes grant any)."""
        if self.strict and not (
            self._oauth_client(client_id, oauth_id, oauth_secret) and self.user(client_id, user_id)
        ):
            return None
        return self._issue(client_id, user_id, now)

    def _issue(self, client_id: str, user_id: str, now: datetime) -> str:
        """A new opaque bearer token, kept by the token keeper (which keeps the table bounded)."""
        token = secrets.token_urlsafe(32)
        self.tokens.keep(token, Token(client_id, user_id, now + self.token_lifetime), now)
        return token

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """A full reset revokes every bearer token; a client's reset keeps them."""
        if client_id is None:
            self.tokens.clear()

    def token(self, value: str, now: datetime) -> Token | None:
        """The live token ``value`` names, or None (an expired one is forgotten)."""
        return self.tokens.find(value, now)

    def _oauth_client(self, client_id: str, oauth_id: str, oauth_secret: str) -> bool:
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
            "WWW-Authenticate": CHALLENGE,
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
        },
    )


def _digest_shaped(value: str, hash_name: str) -> bool:
    """Whether ``value`` is strict Base64 of as many bytes as the hash ``hash_name`` gives."""
    try:
        return len(base64.b64decode(value, validate=True)) == HASHES[hash_name]().digest_size
    except ValueError:  # binascii.Error, or a character beyond ASCII
        return False


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
