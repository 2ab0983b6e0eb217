"""The application factory: configuration layers, the stateful parts, the pipeline and the blueprints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Flask
from marshmallow import ValidationError
from werkzeug.routing import BaseConverter

from . import account_api, api, control, exchange, formats, history_api, oauth, openapi, parts, pipeline
from .contract import CONTROL_PREFIX
from .control_schemas import StateSchema
from .errors import VendorError
from .settings import DEFAULTS, check_config


class ClientIdConverter(BaseConverter):
    """A clientId path segment. The control plane's prefix is reserved; ``.`` and ``..`` never reach
    an application behind IIS, which resolves them; and a segment whose bytes were not UTF-8
    (decoded as U+FFFD) names no account, or ``%FF`` and ``%FE`` would name the same one."""

    regex = rf"(?!(?:{re.escape(CONTROL_PREFIX.strip('/'))}|\.|\.\.)(?:/|$))[^/\ufffd]+"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A sandbox app: defaults, then ``SANDBOX_*`` environment variables, then ``config``."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("SANDBOX")
    app.config.update(config or {})
    check_config(app.config)
    app.url_map.converters["client"] = ClientIdConverter
    app.extensions[parts.EXTENSION] = sandbox = parts.Parts.from_config(app.config)
    app.register_blueprint(control.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(oauth.bp)
    for vendor in (api.bp, account_api.bp, history_api.bp):
        app.register_blueprint(vendor)
        app.register_blueprint(vendor, url_prefix="/Profiles", name=f"prefixed_{vendor.name}")
    pipeline.install(app)
    exchange.init_app(app)
    if app.config["SEED_FILE"]:
        _seed(sandbox, app.config, app.config["SEED_FILE"])
    return app


def _seed(sandbox: parts.Parts, config: Mapping[str, Any], path: str) -> None:
    """Import the state document at ``path`` through the profile service (ValueError, one line,
    if unusable)."""
    try:
        with open(path, "rb") as file:
            document = StateSchema().load(formats.parse_json(file.read(), config["MAX_NESTING_DEPTH"]))
        sandbox.import_state(document, control.importer(config, sandbox.clock.now()))
    except (OSError, ValueError, ValidationError) as error:
        raise ValueError(f"SANDBOX_SEED_FILE {path}: {error}") from None
    except VendorError as error:
        problems = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in error.model_state.items())
        raise ValueError(f"SANDBOX_SEED_FILE {path}: {error.message} {problems}".rstrip()) from None
