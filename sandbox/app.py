"""The application factory: configuration layers, stateful parts, and the blueprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter

from . import api, clock, exchange, store

DEFAULTS: dict[str, Any] = {
    # Largest request body, in bytes; larger ones get 413.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Deepest nesting of a JSON or XML body; deeper ones get 400 before anything is expanded.
    "MAX_NESTING_DEPTH": 32,
    # Most X-Sandbox-Warning headers on one response; the rest are counted in a last one.
    "MAX_WARNINGS": 20,
    # Most profiles a search may return; more matches get 403, as the vendor documents for 50.
    "MAX_SEARCH_RESULTS": 50,
    # Edited.CreatedBy / ModifiedBy when the caller's user id is not known.
    "DEFAULT_USER": "sandbox",
    # Account settings of every clientId, unless ACCOUNTS has an entry for it:
    # {"acme": {"DefaultCustomerType": "Prospect", "DefaultLocale": "fr_FR"}}.
    "DEFAULT_CUSTOMER_TYPE": "Customer",
    "DEFAULT_LOCALE": "en_US",
    "ACCOUNTS": {},
}

POSITIVE_INTEGERS = ("MAX_CONTENT_LENGTH", "MAX_NESTING_DEPTH", "MAX_WARNINGS", "MAX_SEARCH_RESULTS")


class ClientIdConverter(BaseConverter):
    """A clientId path segment; ``_sandbox`` is reserved for the control plane."""

    regex = r"(?!_sandbox(?:/|$))[^/]+"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A sandbox app: defaults, then ``SANDBOX_*`` environment variables, then ``config``."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("SANDBOX")
    app.config.update(config or {})
    check_config(app.config)
    app.url_map.converters["client"] = ClientIdConverter
    clock.init_app(app)
    store.init_app(app)
    exchange.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.bp, url_prefix="/Profiles", name="prefixed_api")
    return app


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse settings the sandbox cannot run with, naming the setting."""
    for key in POSITIVE_INTEGERS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"SANDBOX_{key} must be a positive integer, not {value!r}")
    if not isinstance(config["ACCOUNTS"], Mapping):
        raise ValueError("SANDBOX_ACCOUNTS must be a JSON object of clientId -> settings")
