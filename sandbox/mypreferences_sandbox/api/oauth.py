"""The OAuth 2.0 token endpoint: client credentials in, an expiring bearer token out (RFC 6749)."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, request
from marshmallow import Schema, fields, validate

from .. import parts
from ..contract.operations import FORM, Answer, Body
from ..http.exchange import documented

bp = Blueprint("oauth", __name__)

NO_STORE = {"Cache-Control": "no-store"}


class TokenRequest(Schema):
    grant_type = fields.String(required=True, validate=validate.OneOf(["client_credentials"]))
    # The view splits it at its first "/", and refuses it (invalid_scope) if either part is empty.
    scope = fields.String(
        required=True,
        metadata={"pattern": r"^[^/]+/[\s\S]+$", "description": "`ClientId/UserId`, both non-empty."},
    )
    client_id = fields.String(metadata={"description": "Unless given in a Basic header."})
    client_secret = fields.String()


class Token(Schema):
    access_token = fields.String()
    token_type = fields.String(validate=validate.OneOf(["Bearer"]))
    expires_in = fields.Integer()
    scope = fields.String()


class OAuthError(Schema):
    error = fields.String(
        validate=validate.OneOf(["unsupported_grant_type", "invalid_scope", "invalid_client"])
    )
    error_description = fields.String()


@bp.post("/oauth/token")
@documented(
    "oauth",
    "OAuth 2.0 client credentials: a bearer token",
    {
        200: Answer("A bearer token for `Authorization: Bearer <token>` on the clientId.", Token),
        400: Answer("`unsupported_grant_type` or `invalid_scope`.", OAuthError),
        401: Answer("`invalid_client`.", OAuthError),
    },
    body=Body(TokenRequest, FORM),
    secret_body=True,
)
def issue_token() -> tuple[dict, int, dict]:
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
    sandbox = parts.current()
    token = sandbox.authority.grant(client_id, user_id, oauth_id, oauth_secret, sandbox.clock.now())
    if token is None:
        return _oauth_error("invalid_client", "The client credentials or the scope are not valid.", 401)
    lifetime = int(sandbox.authority.token_lifetime.total_seconds())
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": f"{client_id}/{user_id}",
    }
    return body, 200, NO_STORE


def _client_credentials() -> tuple[str, str]:
    """The OAuth client's id and secret, from a Basic header or else the form."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        oauth_id, _, oauth_secret = decoded.partition(":")
        return oauth_id, oauth_secret
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _oauth_error(code: str, description: str, status: int = 400) -> tuple[dict, int, dict]:
    return {"error": code, "error_description": description}, status, NO_STORE
