"""The application factory: configuration layers, stateful parts, and the blueprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter

from . import api, auth, clock, control, exchange, faults, journal, store

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
    # The control plane under /_sandbox: on or off, and the bearer token it demands (None: none).
    "CONTROL": True,
    "CONTROL_TOKEN": None,
    # Cap, in milliseconds, on every injected delay, dribble and hang.
    "MAX_DELAY_MS": 10_000,
    # Journal: how many entries it keeps (oldest dropped first), and how much of each body.
    "MAX_JOURNAL_ENTRIES": 1000,
    "MAX_JOURNAL_BODY": 4096,
    # Seed of the sandbox's random choices (fault odds, sampled delays, random bytes).
    "SEED": 0,
    # A state document (see /_sandbox/state) loaded at start-up.
    "SEED_FILE": None,
    # Authentication: off, lenient (a well-formed header of a known scheme) or strict (checked
    # against AUTH_FILE); the PNAUTHINFO3 timestamp window and the OAuth token lifetime, in seconds.
    "AUTH_MODE": "lenient",
    "AUTH_FILE": None,
    "AUTH_WINDOW_SECONDS": 900,
    "AUTH_TOKEN_SECONDS": 3600,
}

POSITIVE_INTEGERS = (
    "MAX_CONTENT_LENGTH",
    "MAX_NESTING_DEPTH",
    "MAX_WARNINGS",
    "MAX_SEARCH_RESULTS",
    "MAX_DELAY_MS",
    "MAX_JOURNAL_ENTRIES",
    "MAX_JOURNAL_BODY",
    "AUTH_WINDOW_SECONDS",
    "AUTH_TOKEN_SECONDS",
)


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
    journal.init_app(app)  # before faults: its after-hook must see what the faults decided
    faults.init_app(app)
    auth.init_app(app)
    app.register_blueprint(control.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.bp, url_prefix="/Profiles", name="prefixed_api")
    if app.config["SEED_FILE"]:
        control.load_seed_file(app, app.config["SEED_FILE"])
    return app


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse settings the sandbox cannot run with, naming the setting."""
    for key in POSITIVE_INTEGERS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"SANDBOX_{key} must be a positive integer, not {value!r}")
    if not isinstance(config["ACCOUNTS"], Mapping):
        raise ValueError("SANDBOX_ACCOUNTS must be a JSON object of clientId -> settings")
    if isinstance(config["SEED"], bool) or not isinstance(config["SEED"], int):
        raise ValueError(f"SANDBOX_SEED must be an integer, not {config['SEED']!r}")
    if not isinstance(config["CONTROL"], bool):
        raise ValueError(f"SANDBOX_CONTROL must be true or false, not {config['CONTROL']!r}")
