"""The application factory: configuration layers, the stateful parts, the pipeline and the blueprints."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from flask import Flask
from marshmallow import ValidationError
from werkzeug.routing import BaseConverter, Rule

from . import parts
from .api import accounts, history, oauth, profiles
from .contract.errors import VendorError
from .contract.operations import CONTROL_PREFIX
from .control import dashboard, openapi, views
from .domain.documents import importer
from .http import exchange, pipeline
from .serving import connection, limits
from .settings import DEFAULTS, check_config, check_keys
from .wire.jsonstream import StateDocument

# How many profiles the seed file put in the store (its app.extensions key; absent without one).
SEEDED = "sandbox.seeded"


class ClientIdConverter(BaseConverter):
    """A clientId path segment. The control plane's prefix is reserved; ``.`` and ``..`` never reach
    an application behind IIS, which resolves them; and a segment whose bytes were not UTF-8
    (decoded as U+FFFD) names no account, or ``%FF`` and ``%FE`` would name the same one."""

    regex = rf"(?!(?:{re.escape(CONTROL_PREFIX.strip('/'))}|\.|\.\.)(?:/|$))[^/\ufffd]+"


class SharedBuilderRule(Rule):
    """A URL rule whose ``url_for`` builders are compiled once per process, not once per app."""

    # werkzeug compiles two Python functions per rule (with ast and compile()) when the rule is
    # added: for the sandbox's 77 rules, six parts in seven of create_app's time. The code of each
    # depends only on the parsed rule (without defaults), and takes the rule as its first argument
    # (bound per rule by Rule.compile), so every app of the process can share it: one entry per
    # rule of the code. That is what makes the pytest fixture start in a few milliseconds
    # (docs/performance.md). A werkzeug without this private method, or without the rule's
    # ``_trace``, compiles per rule again: slower, not wrong.
    _builders: ClassVar[dict[tuple[Any, ...], Callable[..., tuple[str, str]]]] = {}

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        trace = getattr(self, "_trace", None)
        if self.defaults or trace is None:  # a default is folded into the code: not shared
            return super()._compile_builder(append_unknown)
        key = (self.rule, tuple(trace), append_unknown)
        builder = self._builders.get(key)
        if builder is None:
            # No lock: two apps built at once may both compile it, and both builds are equal.
            builder = self._builders.setdefault(key, super()._compile_builder(append_unknown))
        return builder


class SandboxFlask(Flask):
    """Flask, with URL rules that share their builders across the apps of a process."""

    url_rule_class = SharedBuilderRule


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A sandbox app: defaults, then ``SANDBOX_*`` environment variables, then ``config``."""
    app = SandboxFlask(__name__)
    check_keys(config or {}, app.config)  # Flask's own keys, as yet the only ones it holds
    # A copy: SANDBOX_ACCOUNTS__acme sets one key of ACCOUNTS in place, which would change the
    # defaults of every later app of the process.
    app.config.update(copy.deepcopy(DEFAULTS))
    app.config.from_prefixed_env("SANDBOX")
    app.config.update(config or {})
    check_config(app.config)
    app.url_map.converters["client"] = ClientIdConverter
    app.extensions[parts.EXTENSION] = sandbox = parts.Parts.from_config(app.config)
    for plane in (views.bp, openapi.bp, oauth.bp, dashboard.bp):
        app.register_blueprint(plane)
    for vendor in (profiles.bp, accounts.bp, history.bp):
        app.register_blueprint(vendor)
        app.register_blueprint(vendor, url_prefix="/Profiles", name=f"prefixed_{vendor.name}")
    pipeline.install(app)
    limits.install(app)
    connection.install(app)
    exchange.init_app(app)
    if app.config["SEED_FILE"]:
        app.extensions[SEEDED] = _seed(sandbox, app.config, app.config["SEED_FILE"])
    return app


def _seed(sandbox: parts.Parts, config: Mapping[str, Any], path: str) -> int:
    """Import the state document at ``path`` through the profile service (ValueError, one line,
    if unusable); how many profiles it imported."""
    try:
        with open(path, "rb") as file:
            document = StateDocument(file, config["MAX_NESTING_DEPTH"])
            editor_for = importer(config, sandbox.clock.now())
            report = sandbox.documents.apply(document.clients(), lambda: document.other, editor_for)
    except (OSError, ValueError, ValidationError) as error:
        raise ValueError(f"SANDBOX_SEED_FILE {path}: {error}") from None
    except VendorError as error:
        problems = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in error.model_state.items())
        raise ValueError(f"SANDBOX_SEED_FILE {path}: {error.message} {problems}".rstrip()) from None
    return sum(report["imported"].values())
