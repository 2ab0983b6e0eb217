"""The application factory: configuration layers, stateful parts, and the blueprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter

from . import api, auth, clock, control, exchange, faults, journal, openapi, requestlog, store
from .settings import DEFAULTS, check_config


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
    requestlog.init_app(app)  # before journal and faults: after-hooks run in reverse order
    journal.init_app(app)  # before faults: its after-hook must see what the faults decided
    faults.init_app(app)
    auth.init_app(app)
    app.register_blueprint(control.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.bp, url_prefix="/Profiles", name="prefixed_api")
    if app.config["SEED_FILE"]:
        control.load_seed_file(app, app.config["SEED_FILE"])
    return app
