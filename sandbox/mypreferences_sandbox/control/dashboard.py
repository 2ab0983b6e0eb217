"""Pages for a browser: the dashboard under ``/_sandbox/ui`` and the API reference at ``/_sandbox/docs``.

The dashboard shows the clients and their profile counts, one client's profiles, one profile, the
active fault rules and the newest journal entries: HTML rendered by the server, escaped by Jinja,
with no script, every list capped. Each value a caller supplied (a clientId, a profile's field, a
path, a warning) is isolated in a ``<bdi>``: a right-to-left override in it reorders nothing around
it, and it cannot pass for another cell's text. It obeys the control plane's switches: turned
off, a 404; locked, it wants the token, which a browser following a link can only carry in the
query, as ``?token=``.

The API reference is Swagger UI over ``/_sandbox/openapi.json``, its files served from the
swagger-ui-bundle package, so that it works offline. Like the document, it answers whatever the
switches say: it is read-only and holds no state.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, send_file, url_for

# The package ships no type information: its one name is a Path.
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from .. import parts
from ..contract.errors import NotFound, Unauthorized, invalid
from ..contract.operations import CONTROL_PREFIX, Answer, Query, contract_of
from ..http.exchange import Documented, documented

bp = Blueprint("ui", __name__, url_prefix=CONTROL_PREFIX, template_folder="templates")

PAGE_SIZE = 200  # rows of a list: clients, or one client's profiles
# A client's profiles are counted up to this many, then shown as "1000+": a page of 200 clients
# reads at most 1,001 profiles of each, however many are stored.
COUNT_CAP = 1000
LATEST = 50  # journal entries shown, newest first
PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
# Unicode's bidirectional formatting characters: marks, embeddings, overrides, isolates.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
SWAGGER_UI: Path = swagger_ui_path

# The dashboard runs no script and loads nothing: a script slipped into a page through a clientId or
# a profile field could not run even if the escaping missed it. No-referrer and no-store keep a
# ``?token=`` out of Referer headers and out of the browser's cache.
DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Swagger UI's own files, its initializer inline, and requests to this sandbox only: nothing from
# outside, so a page that works here works offline.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "Referrer-Policy": "no-referrer",
}

PAGE = Query(
    "page",
    {"type": "integer", "minimum": 1, "maximum": 999_999_999},
    f"Which page of {PAGE_SIZE} rows; 1 by default.",
)
TOKEN = Query(
    "token",
    description="SANDBOX_CONTROL_TOKEN, where the `Authorization` header cannot be sent (a browser's "
    "address bar); the page's links carry it on.",
)
BAD_PAGE = {400: "`page` is not a whole number from 1."}
UNKNOWN_CLIENT = "No profile or account configuration of this clientId, or the control plane is off."


def page_view(summary: str, answer: str, **details: Any) -> Documented:
    """A dashboard page's contract: HTML, behind the control plane's switches."""
    errors = {401: None, 404: None, **details.pop("errors", {})}
    return documented("control", summary, {200: Answer(answer)}, errors=errors, **details)


@bp.before_request
def guard() -> None:
    """Turned off: a 404. Locked by a token: a page wants it as ``?token=`` or as the control
    plane's bearer header. The API reference answers either way."""
    contract = contract_of(current_app.view_functions.get(request.endpoint or ""))
    if contract is not None and not contract.guarded:
        return
    if not current_app.config["CONTROL"]:
        raise NotFound("The control plane is turned off (SANDBOX_CONTROL=false).")
    token = current_app.config["CONTROL_TOKEN"]
    if token is None:
        return
    # The f-string also serves a token of digits, which from_prefixed_env reads as a number.
    expected = f"{token}".encode()
    in_query = hmac.compare_digest(request.args.get("token", "").encode(), expected)
    in_header = hmac.compare_digest(request.headers.get("Authorization", "").encode(), b"Bearer " + expected)
    if not (in_query or in_header):
        raise Unauthorized(
            "The dashboard needs ?token=<SANDBOX_CONTROL_TOKEN> (or 'Authorization: Bearer <token>').",
            headers={"WWW-Authenticate": 'Bearer realm="mypreferences-sandbox"'},
        )


def link(endpoint: str, **values: Any) -> str:
    """The URL of a dashboard page, carrying on the ``?token=`` this request came with."""
    token = request.args.get("token")
    return url_for(endpoint, **(values | {"token": token} if token else values))


def _page() -> int:
    """The ``page`` asked for, from 1; 400 if it is not a whole number from 1."""
    raw = request.args.get("page", "1")
    if PAGE_NUMBER.fullmatch(raw) is None:
        raise invalid("page", "Expected a whole number from 1 (of at most 9 digits).")
    return int(raw)


def _render(template: str, headers: Mapping[str, str], **context: Any) -> Response:
    """An HTML page from ``template``, whose links carry the token on (``link``)."""
    return Response(render_template(template, link=link, **context), headers=headers, mimetype="text/html")


# strict_slashes=False: ``/_sandbox/ui/``, as a browser or a hand often writes it, is the dashboard
# too, rather than the vendor API's 404 (a rule without its slash otherwise matches only without).
@bp.get("/ui", strict_slashes=False)
@page_view(
    "The dashboard",
    "The clients and their profile counts, the active fault rules, the newest journal entries.",
    query=(PAGE, TOKEN),
    errors=BAD_PAGE,
)
def dashboard() -> Response:
    """The dashboard: every client (of the store and of the accounts), 200 a page, with its
    profiles counted up to 1,000; the active fault rules with their counters; the newest 50
    journal entries. Locked by SANDBOX_CONTROL_TOKEN, it wants ``?token=``."""
    sandbox = parts.current()
    page = _page()
    stored = sandbox.service.export()  # each client's profiles are read only if counted
    names = sorted(set(stored) | set(sandbox.accounts.export()))
    shown = names[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    clients = [(name, _count(stored.get(name))) for name in shown]
    rules = [rule for rule in sandbox.faults.reports(sandbox.clock.now()) if rule["state"] == "active"]
    return _render(
        "dashboard.html",
        DASHBOARD_HEADERS,
        clients=clients,
        client_total=len(names),
        page=page,
        more=len(names) > page * PAGE_SIZE,
        rules=[_rule_row(rule) for rule in rules[:PAGE_SIZE]],
        rule_total=len(rules),
        entries=_latest(lambda entry: True),
    )


@bp.get("/ui/clients/<client_id>")
@page_view(
    "A client on the dashboard",
    "The client's profiles, 200 a page, and its newest journal entries.",
    query=(PAGE, TOKEN),
    errors={**BAD_PAGE, 404: UNKNOWN_CLIENT},
)
def dashboard_client(client_id: str) -> Response:
    """One client's profiles, active or not, 200 a page, by ProfileId, with how many it has
    (counted up to 1,000, or as far as the page reads), and its newest 50 journal entries; 404 for
    a clientId with neither profiles nor an account configuration."""
    sandbox = parts.current()
    page = _page()
    stored = sandbox.service.export(client_id).get(client_id)
    if stored is None and client_id not in sandbox.accounts.export(client_id):
        raise NotFound(f"The sandbox holds nothing of the clientId '{client_id}'.")
    start = (page - 1) * PAGE_SIZE
    profiles, total = _page_of(stored, start) if stored is not None else ([], 0)
    return _render(
        "client.html",
        DASHBOARD_HEADERS,
        client_id=client_id,
        profiles=[_profile_row(profile) for profile in profiles],
        first=start + 1,
        total=f"{COUNT_CAP}+" if total is None else str(total),
        page=page,
        more=total is None or total > start + PAGE_SIZE,
        entries=_latest(lambda entry: entry.get("clientId") == client_id),
    )


@bp.get("/ui/clients/<client_id>/profiles/<int:profile_id>")
@page_view(
    "A profile on the dashboard",
    "The profile as stored, as JSON.",
    query=(TOKEN,),
    errors={404: "Unknown profile or another clientId's, or the control plane is off."},
)
def dashboard_profile(client_id: str, profile_id: int) -> Response:
    """One profile, active or not, as stored (as ``GET /_sandbox/state`` exports it); 404 if
    unknown or another clientId's."""
    profile = parts.current().service.get(client_id, profile_id)
    return _render(
        "profile.html",
        DASHBOARD_HEADERS,
        client_id=client_id,
        profile_id=profile_id,
        document=_json(profile, indent=2),
    )


def _count(profiles: Iterator[dict] | None) -> str:
    """How many profiles there are, up to COUNT_CAP (then ``1000+``)."""
    # A reading left unfinished is closed once dropped, when the request ends: on Redis, its copy
    # is deleted then.
    counted = sum(1 for _ in islice(profiles, COUNT_CAP + 1)) if profiles is not None else 0
    return f"{COUNT_CAP}+" if counted > COUNT_CAP else str(counted)


@bp.app_template_filter("isolate")
def isolate(value: object) -> str:
    """``value`` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE, for text that cannot hold
    a ``<bdi>`` (a page's title): a right-to-left override in it then reorders nothing after it."""
    return f"\u2068{value}\u2069"


def _json(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON, its letters as they are but its bidirectional controls escaped (``\\u202e``):
    a JSON text shows several strings on a line, and an override in one would reorder the rest of
    the line, hiding what it holds. They only occur in strings, where the escape means the same."""
    return BIDI_CONTROLS.sub(
        lambda found: f"\\u{ord(found.group()):04x}", json.dumps(value, indent=indent, ensure_ascii=False)
    )


def _page_of(profiles: Iterator[dict], start: int) -> tuple[list[dict], int | None]:
    """The PAGE_SIZE profiles from position ``start``, and how many there are in all: None where
    that is more than COUNT_CAP and more than the page reads (one more than its last)."""
    # One reading serves both, so that the page and its total come from the same moment's state
    # and the store is read once: up to 1,001 profiles, as the dashboard's count reads of each
    # client, or to one past the page where it lies further.
    limit = max(COUNT_CAP, start + PAGE_SIZE) + 1
    shown: list[dict] = []
    counted = 0
    for counted, profile in enumerate(islice(profiles, limit), 1):
        if counted > start and len(shown) < PAGE_SIZE:
            shown.append(profile)
    return shown, None if counted == limit else counted


def _profile_row(profile: dict) -> dict[str, Any]:
    """What a profile's row shows: its id, whether active, name, default email, AlternateIds."""
    name = profile.get("CustomerName") or {}
    emails = profile.get("Emails") or []
    default = next((email for email in emails if email.get("IsDefault")), emails[0] if emails else {})
    # The name's parts and each AlternateId stay apart, for the template to isolate each: a
    # right-to-left override in a FirstName would otherwise reverse the LastName after it.
    return {
        "id": profile.get("ProfileId"),
        "active": profile.get("IsActive"),
        "name": [part for part in (name.get("FirstName"), name.get("LastName")) if part],
        "email": default.get("EmailAddress") or "",
        "alternate_ids": [
            (entry.get("AlternateIdType"), entry.get("AlternateId"))
            for entry in profile.get("AlternateIds") or []
        ],
        "modified": (profile.get("Edited") or {}).get("ModifiedDate") or "",
    }


def _rule_row(rule: dict) -> dict[str, Any]:
    """What an active fault rule's row shows: what it matches, what it does, its counters."""
    if "respond" in rule:
        action = f"respond {rule['respond']['status']}"
    elif "fault" in rule:
        action = rule["fault"]["type"]
    else:
        action = "delay"
    return {
        "id": rule["id"],
        "match": _json(rule.get("match") or {}),
        "action": action + (" after" if rule.get("when") == "after" else ""),
        "matched": rule["matched"],
        "hits": rule["hits"],
        "remaining": "unlimited" if rule["remaining"] is None else rule["remaining"],
        "expires": rule.get("expiresAt") or "",
    }


def _latest(matches: Callable[[dict], bool]) -> list[dict[str, Any]]:
    """The newest LATEST journal entries ``matches`` accepts, newest first, as their rows show them."""
    entries = parts.current().journal.entries(matches)[-LATEST:]
    return [
        {
            "time": entry.get("time", ""),
            "method": entry.get("method", ""),
            "path": entry.get("path", ""),
            "status": "connection fault" if entry.get("status") is None else entry["status"],
            "client_id": entry.get("clientId"),
            "fault": (entry.get("fault") or {}).get("id", ""),
            "warnings": entry.get("warnings") or [],
        }
        for entry in reversed(entries)
    ]


# --- the API reference ----------------------------------------------------------------------


@bp.get("/docs")
@documented(
    "control",
    "The API reference",
    {200: Answer("Swagger UI over this sandbox's OpenAPI document, an HTML page.")},
    guarded=False,
)
def api_docs() -> Response:
    """Swagger UI over ``/_sandbox/openapi.json``, from files the sandbox serves itself (it works
    offline); answers even when the control plane is locked or off, as the document does."""
    return _render("docs.html", DOCS_HEADERS, document_url=url_for("openapi.document"))


@bp.get("/docs/<asset>")
@documented(
    "control",
    "A file of the API reference",
    {200: Answer("The file: Swagger UI's stylesheet or script.")},
    errors={404: "No such file."},
    guarded=False,
)
def api_docs_asset(asset: str) -> Response:
    """One of Swagger UI's files (``swagger-ui.css``, ``swagger-ui-bundle.js``), from the
    swagger-ui-bundle package; 404 for any other name."""
    if asset not in ASSETS:
        raise NotFound(f"The API reference has no file '{asset}'.")
    return send_file(SWAGGER_UI / asset, mimetype=ASSETS[asset], max_age=3600)
