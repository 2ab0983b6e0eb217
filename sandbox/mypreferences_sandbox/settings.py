"""Every setting of the sandbox: its default, its meaning, its checks; and every SANDBOX_* name known."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

# Every setting: its default and what it means (the command line's --help prints this table).
# Each is read from a SANDBOX_* environment variable, parsed as JSON where it parses.
SETTINGS: dict[str, tuple[Any, str]] = {
    "MAX_CONTENT_LENGTH": (1024 * 1024, "largest request body in bytes; larger gets 413"),
    "MAX_IMPORT_BYTES": (
        256 * 1024 * 1024,
        "largest state document POST /_sandbox/state takes, in bytes; larger gets 413",
    ),
    "MAX_NESTING_DEPTH": (32, "deepest JSON or XML nesting; deeper gets 400 before anything is expanded"),
    "MAX_WARNINGS": (20, "most X-Sandbox-Warning headers on one response; a last one counts the rest"),
    "MAX_WARNING_CHARS": (500, "longest X-Sandbox-Warning line; a longer one is cut and ends in ..."),
    "MAX_ENTRIES": (1000, "most entries one collection of a body may hold; more gets 400"),
    "MAX_MODEL_ERRORS": (
        200,
        "errors one body may earn before validation stops (ASP.NET Core's default); a last one says so",
    ),
    "MAX_SEARCH_RESULTS": (50, "most profiles a search returns; more matches get 403, as documented"),
    "DEFAULT_USER": ("sandbox", "Edited.CreatedBy/ModifiedBy when the caller's user id is not known"),
    "DEFAULT_CUSTOMER_TYPE": ("Customer", "the accounts' default CustomerType"),
    "DEFAULT_LOCALE": ("en_US", "the accounts' default DefaultLocale"),
    "ACCOUNTS": (
        {},
        'per-clientId account settings: defaults and configured types, e.g. {"acme": '
        '{"DefaultCustomerType": "Prospect", "AlternateIdTypes": ["CRM"]}}',
    ),
    "CONTROL": (True, "the control plane under /_sandbox (health answers either way)"),
    "CONTROL_TOKEN": (None, "bearer token every control call but health must carry"),
    "MAX_DELAY_MS": (10_000, "cap on every injected delay, dribble and hang, in milliseconds"),
    "MAX_JOURNAL_ENTRIES": (1000, "journal size; the oldest entries are dropped first"),
    "MAX_FINISHED_FAULTS": (
        1000,
        "spent and expired fault rules kept for the listing; those that finished first are dropped first",
    ),
    "MAX_FAULT_RULES": (
        1000,
        "most active fault rules at once; adding one more gets 409 until one is deleted, spent or expired",
    ),
    "MAX_HISTORY_ENTRIES": (
        1000,
        "preference history kept per profile; the oldest changes are dropped first",
    ),
    "MAX_JOURNAL_BYTES": (
        32 * 1024 * 1024,
        "most bytes the journal's entries hold together (about, as JSON); the oldest are dropped first",
    ),
    "MAX_JOURNAL_ITEMS": (50, "most headers, query parameters and ModelState keys one journal entry keeps"),
    "MAX_JOURNAL_BODY": (4096, "characters of a request body, and of each header value, an entry keeps"),
    "SEED": (0, "seed of the sandbox's random choices (fault odds, sampled delays, random bytes)"),
    "SEED_FILE": (None, "a state document (see /_sandbox/state) loaded at start-up"),
    "AUTH_MODE": ("lenient", "off, lenient (a well-formed header of a known scheme) or strict (AUTH_FILE)"),
    "AUTH_FILE": (None, "strict mode's clients, users, secrets, permissions and OAuth clients (JSON)"),
    "AUTH_SECRET": (
        None,
        "lenient mode: a secret every user of every clientId has, so that signatures made with it are "
        "verified (and draw no warning)",
    ),
    "AUTH_WINDOW_SECONDS": (900, "how far a PNAUTHINFO3 timestamp may lag the sandbox clock"),
    "AUTH_TOKEN_SECONDS": (3600, "lifetime of an OAuth bearer token"),
    "LOG_FORMAT": ("text", "the one log line per request: text or json"),
    "STORE": (
        "memory",
        "where the state is kept: memory (one process), or a Redis that many workers and sandboxes "
        "share (redis://HOST:PORT/DB, rediss://, unix://PATH, redis+cluster://HOST:PORT)",
    ),
    "STORE_NAMESPACE": ("mps", "prefix of the keys in Redis: sandboxes of other namespaces share nothing"),
    "STORE_TIMEOUT_MS": (2000, "longest wait for Redis on one call; then, as with Redis away, 503"),
}
DEFAULTS: dict[str, Any] = {key: default for key, (default, _) in SETTINGS.items()}

PREFIX = "SANDBOX_"
# Variables that are not settings of create_app, by name without the prefix: read by the command line
# (__main__.py), by the pytest plugin (testing/pytest_plugin.py), and by docker-compose.yml.
COMMAND_LINE_VARIABLES = (
    "HOST",
    "PORT",
    "WORKERS",
    "MAX_CONNECTIONS",
    "HEADER_TIMEOUT",
    "BODY_TIMEOUT",
    "THREADS",
)
PLUGIN_VARIABLES = ("URL", "WAIT", "FAIL_ON_WARNING", "CONTROL_TOKEN")
COMPOSE_VARIABLES = ("IMAGE", "A_PORT", "B_PORT")
KNOWN_VARIABLES = frozenset(
    f"{PREFIX}{name}" for name in (*SETTINGS, *COMMAND_LINE_VARIABLES, *PLUGIN_VARIABLES, *COMPOSE_VARIABLES)
)

TEN_YEARS = 10 * 365 * 86_400  # seconds
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster")
POSITIVE_INTEGERS = (
    "MAX_CONTENT_LENGTH",
    "MAX_IMPORT_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_WARNINGS",
    "MAX_SEARCH_RESULTS",
    "MAX_MODEL_ERRORS",
    "MAX_ENTRIES",
    "MAX_WARNING_CHARS",
    "MAX_DELAY_MS",
    "MAX_JOURNAL_ENTRIES",
    "MAX_FINISHED_FAULTS",
    "MAX_FAULT_RULES",
    "MAX_JOURNAL_BYTES",
    "MAX_JOURNAL_ITEMS",
    "MAX_HISTORY_ENTRIES",
    "MAX_JOURNAL_BODY",
    "AUTH_WINDOW_SECONDS",
    "AUTH_TOKEN_SECONDS",
    "STORE_TIMEOUT_MS",
)


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse settings the sandbox cannot run with, naming the setting."""
    for key in POSITIVE_INTEGERS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"SANDBOX_{key} must be a positive integer, not {value!r}")
    accounts = config["ACCOUNTS"]
    if not isinstance(accounts, Mapping) or not all(isinstance(own, Mapping) for own in accounts.values()):
        raise ValueError("SANDBOX_ACCOUNTS must be a JSON object of clientId -> settings")
    # The defaults must pass the rules a client's own values do (CustomerType <= 100, ...).
    _check_text("DEFAULT_CUSTOMER_TYPE", config["DEFAULT_CUSTOMER_TYPE"], 100)
    _check_text("DEFAULT_LOCALE", config["DEFAULT_LOCALE"], 15)
    for client, own in accounts.items():
        _check_text(f"ACCOUNTS.{client}.DefaultCustomerType", own.get("DefaultCustomerType", "-"), 100)
        _check_text(f"ACCOUNTS.{client}.DefaultLocale", own.get("DefaultLocale", "-"), 15)
    if config["AUTH_TOKEN_SECONDS"] > TEN_YEARS or config["AUTH_WINDOW_SECONDS"] > TEN_YEARS:
        raise ValueError("SANDBOX_AUTH_TOKEN_SECONDS and SANDBOX_AUTH_WINDOW_SECONDS are at most ten years")
    if isinstance(config["SEED"], bool) or not isinstance(config["SEED"], int):
        raise ValueError(f"SANDBOX_SEED must be an integer, not {config['SEED']!r}")
    store = config["STORE"]
    if store != "memory" and not (isinstance(store, str) and urlsplit(store).scheme in REDIS_SCHEMES):
        raise ValueError(f"SANDBOX_STORE must be memory or a Redis URL (redis://HOST:PORT/DB), not {store!r}")
    # redis-py reads the path of a redis:// URL as the database number, and ignores one it cannot
    # read as a number: the sandbox would share database 0 with whatever else uses it.
    if urlsplit(store).scheme in ("redis", "rediss") and not re.fullmatch(r"(/\d*)?", urlsplit(store).path):
        # Not the whole URL, which may hold a password.
        database = urlsplit(store).path[1:]
        raise ValueError(
            f"SANDBOX_STORE's database must be a whole number (redis://HOST:PORT/0), not {database!r}"
        )
    namespace = config["STORE_NAMESPACE"]
    if (
        not isinstance(namespace, str)
        or not namespace
        or set(namespace) & set("{}")
        or not namespace.isprintable()
    ):
        raise ValueError(f"SANDBOX_STORE_NAMESPACE must be printable text without braces, not {namespace!r}")
    token = config["CONTROL_TOKEN"]
    # Sent as `Authorization: Bearer <token>`, a token must be one run of visible characters. The
    # message does not repeat it: it is a secret.
    if token is not None and (not str(token) or any(c.isspace() or not c.isprintable() for c in str(token))):
        raise ValueError(
            "SANDBOX_CONTROL_TOKEN must be visible characters without spaces: it is sent as "
            "'Authorization: Bearer <token>'"
        )
    if not isinstance(config["CONTROL"], bool):
        raise ValueError(f"SANDBOX_CONTROL must be true or false, not {config['CONTROL']!r}")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for each ``SANDBOX_*`` variable of ``environ`` that nothing reads, naming the closest name."""
    # Compared without the prefix, which every name shares and would make any two look alike.
    known = [name.removeprefix(PREFIX) for name in KNOWN_VARIABLES]
    lines = []
    for name in sorted(environ):
        # SANDBOX_ACCOUNTS__acme sets one key of SANDBOX_ACCOUNTS (Flask reads "__" as nesting).
        head = name.split("__", 1)[0]
        if name.startswith(PREFIX) and head not in KNOWN_VARIABLES:
            lines.append(f"{name} is not a setting; {_closest(head.removeprefix(PREFIX), known, PREFIX)}")
    return lines


def check_keys(config: Mapping[str, Any], others: Iterable[str]) -> None:
    """Refuse a key of ``config`` that is neither a setting nor one of ``others`` (the framework's),
    naming the closest setting: a misspelt key would otherwise be ignored, its setting left at its
    default (a control token, say)."""
    for key in sorted(set(config) - set(SETTINGS) - set(others)):
        raise ValueError(f"{key} is not a setting; {_closest(key, list(SETTINGS), '')}")


def _closest(name: str, known: list[str], prefix: str) -> str:
    closest = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean {prefix}{closest[0]}?" if closest else "no known name is close"


def _check_text(name: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ValueError(f"SANDBOX_{name} must be text of 1 to {limit} characters, not {value!r}")
