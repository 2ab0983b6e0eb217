"""The vendor's Profile endpoints: thin views that parse, validate, call the domain and respond.

The blueprint is registered twice, at the root and under ``/Profiles``, so a client whose base URL
is the vendor's ``https://pmstg.mypreferences.com/Profiles/`` only swaps the host.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, url_for

from . import exchange, schemas
from .clock import current_clock
from .profiles import Account, new_profile
from .store import current_store

bp = Blueprint("api", __name__)

CREATE = schemas.CreateUserProfile()
PROFILE = schemas.UserProfile()


@bp.before_request
def negotiate() -> None:
    """Refuse an Accept the sandbox cannot satisfy (406) before anything is read or stored."""
    exchange.response_type()


@bp.post("/<client:client_id>/Profile")
def create_profile(client_id: str) -> Response:
    """Create a profile: 201 with Location and the UserProfile; 400 if invalid, 409 if an
    AlternateId is held by another profile of the clientId. Nothing is stored on an error."""
    body = exchange.read(CREATE, "CreateUserProfile")
    data = schemas.load(CREATE, body.data)
    profile = new_profile(
        data,
        account=Account.from_config(current_app.config, client_id),
        user=current_app.config["DEFAULT_USER"],
        now=current_clock().now(),
    )
    stored = current_store().create(client_id, profile)
    location = url_for(".get_profile", client_id=client_id, profile_id=stored["ProfileId"], _external=True)
    return exchange.respond(stored, PROFILE, "UserProfile", 201, {"Location": location}, body.ignored)


@bp.get("/<client:client_id>/Profile/<int:profile_id>")
def get_profile(client_id: str, profile_id: int) -> Response:
    """One profile as a UserProfile; 404 if unknown or another clientId's."""
    return exchange.respond(current_store().get(client_id, profile_id), PROFILE, "UserProfile")
