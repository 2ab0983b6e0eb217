"""The one request pipeline: every hook a request passes, in one visible order.

Before the view (``_before``): the request's record is filled in; a fault rule may fire; a vendor
request is authenticated, then its ``Accept`` negotiated, all before its body is read (unless a
fault rule matches on the body: it is read then, to be held against the rule). After it
(``_after``): a fault that fires after the operation hits the response; the warnings gathered on
the way become ``X-Sandbox-Warning`` headers; the journal records the vendor request; one log line
is written. Around it all, a WSGI middleware starts the record and carries out connection faults
on the client's real socket. Faults come before authentication on purpose: an outage answers
before the vendor's application looks at credentials.
"""

from __future__ import annotations

import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from .. import parts
from ..contract import schemas
from ..contract.errors import VendorError
from ..contract.moments import timestamp
from ..contract.operations import contract_of, is_control, operation_name
from ..domain.faults import Firing, RequestFacts
from ..domain.journal import REDACTED, kept, redact
from ..wire import formats
from . import exchange
from .record import RequestRecord, current_record

LOG_FORMATS = ("text", "json")
log = logging.getLogger("mypreferences_sandbox.requests")

# What the vendor's stack says for the statuses a test most often injects.
MESSAGES = {
    401: "Authorization has been denied for this request.",
    500: "An error has occurred.",
}


SECRET_PATHS = "sandbox.secret_paths"


def install(app: Flask) -> None:
    """Put ``app``'s requests through the pipeline (once its blueprints are registered)."""
    if app.config["LOG_FORMAT"] not in LOG_FORMATS:
        raise ValueError(f"SANDBOX_LOG_FORMAT must be text or json, not {app.config['LOG_FORMAT']!r}")
    # By path, not by the view a request reached: a wrong method on the token path reaches none,
    # and its body holds the secret all the same.
    app.extensions[SECRET_PATHS] = frozenset(
        rule.rule
        for rule in app.url_map.iter_rules()
        if (found := contract_of(app.view_functions[rule.endpoint])) is not None and found.secret_body
    )
    app.before_request(_before)
    app.after_request(_after)


def _before() -> Response | None:
    record = current_record()
    schemas.error_limit.set(current_app.config["MAX_MODEL_ERRORS"])
    schemas.entry_limit.set(current_app.config["MAX_ENTRIES"])
    view = current_app.view_functions.get(request.endpoint or "")
    record.contract = contract_of(view)
    record.operation = operation_name(request.endpoint)
    record.control = is_control(request.path)
    record.client_id = (request.view_args or {}).get("client_id")
    if request.url_rule is None and not record.control:
        # No route (404) or not this method (405): the path still names the client, and a test
        # that reads the journal by its clientId must see the requests it sent astray.
        record.client_id = _client_in_path(request.path)
    if record.contract is not None:
        request.max_content_length = current_app.config[record.contract.body_limit]
    if record.control:
        return None
    stand_in = _fire_before(record)
    if stand_in is not None:
        return stand_in
    if record.plane == "vendor":
        sandbox = parts.current()
        header = request.headers.get("Authorization", "")
        caller = sandbox.authority.authenticate(
            header, record.client_id or "", request.method, sandbox.clock.now()
        )
        record.user = caller.user
        record.warnings.extend(caller.warnings)
        exchange.response_type()  # 406 before anything is read or stored
    return None


def _client_in_path(path: str) -> str | None:
    """The clientId where the vendor's URLs put it: the first segment, or the second after ``Profiles``."""
    segments = path.split("/")[1:]
    if segments[:1] == ["Profiles"]:
        segments = segments[1:]
    elif segments[:1] == ["oauth"]:
        return None
    return segments[0] if segments and segments[0] else None


def _after(response: Response) -> Response:
    record = current_record()
    if record.firing is not None and record.firing.when == "after":
        response = _carry_out(record, record.firing, response)
    told = _told(record.warnings)
    for line in told:
        response.headers.add("X-Sandbox-Warning", line)
    _as_iis_writes_it(response)
    if not record.control and not record.unreachable:
        try:
            parts.current().journal.record(_journal_entry(record, response, told))
        except parts.store_errors(current_app.config) as error:
            if not parts.unreachable(error):
                raise
            log.error("Redis cannot be reached: this request is not journaled: %s", error)
    _log_line(record, response)
    return response


def _as_iis_writes_it(response: Response) -> None:
    """The status line with its standard reason phrase (``201 Created``, where werkzeug writes
    ``201 CREATED``), and no Content-Type on a 204, which has no body to type."""
    reason = _reason(response.status_code)
    if reason is not None:  # a status the standard does not name keeps werkzeug's line
        response.status = f"{response.status_code} {reason}"
    if response.status_code == 204:
        del response.headers["Content-Type"]


def _told(warnings: list[str]) -> list[str]:
    """The warnings as the client is told them, one header each, and as the journal keeps them:
    escaped (they may hold a client's field names: newlines, non-ASCII, lone surrogates) and capped."""
    limit, length = current_app.config["MAX_WARNINGS"], current_app.config["MAX_WARNING_CHARS"]
    told = [_cut(warning.encode("unicode_escape").decode("ascii"), length) for warning in warnings[:limit]]
    if len(warnings) > limit:
        told.append(f"and {len(warnings) - limit} more")
    return told


def _cut(line: str, length: int) -> str:
    """``line``, or its first ``length`` characters and "...": a header line of a megabyte (a
    client's field name) fails most clients, after the write it tells of has landed."""
    return line if len(line) <= length else line[:length] + "..."


# --- faults ---------------------------------------------------------------------------------


def _fire_before(record: RequestRecord) -> Response | None:
    """Fire the first matching fault rule; carry it out now if it acts before the operation."""
    sandbox = parts.current()
    facts = RequestFacts(
        request.method, request.path, record.operation, record.client_id, request.headers, _parsed_body
    )
    record.facts = facts  # the journal entry tells its near miss
    firing = sandbox.faults.fire(facts, sandbox.clock.now(), current_app.config["MAX_DELAY_MS"])
    record.firing = firing
    if firing is None or firing.when != "before":
        return None
    # Without an error, the view is skipped all the same when the connection breaks: a stand-in
    # response, of which only the status line is ever sent (MALFORMED_RESPONSE_CHUNK).
    return _carry_out(record, firing, Response(status=200) if "fault" in firing.spec else None)


def _carry_out(record: RequestRecord, firing: Firing, response: Any) -> Any:
    """Delay ``response``, replace it by an injected error, or leave the connection fault to the
    middleware (which reads the record's firing)."""
    time.sleep(firing.delay)
    if "respond" in firing.spec:
        return _injected(firing.spec["respond"])
    if "fault" in firing.spec and firing.spec["fault"]["type"] != "DRIBBLE":
        record.dropped = True
    return response


def _injected(respond: dict) -> Response:
    """The injected error: the given body as it is, or the vendor's error in the negotiated format."""
    headers = respond.get("headers", {})
    status = respond["status"]
    if "body" not in respond:
        return exchange.render_error(VendorError(_message(status), status=status, headers=headers))
    body = respond["body"]
    if isinstance(body, str):
        response = Response(body, status, content_type="text/plain; charset=utf-8")
    else:
        response = Response(json.dumps(body), status, content_type="application/json; charset=utf-8")
    response.headers.update(headers)
    return response


def _message(status: int) -> str:
    """What the vendor's stack says with an injected status that comes without a body."""
    reason = _reason(status)
    return MESSAGES.get(status) or (f"{reason}." if reason else "The sandbox injected this error.")


def _reason(status: int) -> str | None:
    """The standard reason phrase of ``status``, or None for a status the standard does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


# --- the journal entry and the log line -----------------------------------------------------


def _journal_entry(record: RequestRecord, response: Response, told: list[str]) -> dict:
    """The journal's entry of this request, each part bounded: the body and every header value to
    MAX_JOURNAL_BODY characters, headers, query parameters and ModelState keys to
    MAX_JOURNAL_ITEMS each; ``cut`` says how many of each were left out. The body kept is parsed
    when it was kept whole (``bodyJson``; else ``bodyNotParsed`` says why)."""
    config = current_app.config
    limit, items = config["MAX_JOURNAL_BODY"], config["MAX_JOURNAL_ITEMS"]
    body, withheld = _kept_body()
    moment = parts.current().clock.now()
    headers, headers_cut = kept(((k, v[:limit]) for k, v in redact(request.headers.items()).items()), items)
    query, query_cut = kept(request.args.lists(), items)
    entry = {
        "moment": moment,
        "time": timestamp(moment),
        "method": request.method,
        "path": request.path,
        "operation": record.operation,
        "clientId": record.client_id,
        "query": query,
        "headers": headers,
        "body": body[:limit],
        "bodyTruncated": len(body) > limit,
        **_body_form(body, withheld, limit),
        "status": None if record.dropped else response.status_code,
        "durationMs": record.elapsed_ms(),
    }
    error, errors_cut = record.error, 0
    if error is not None and "ModelState" in error:
        model_state, errors_cut = kept(error["ModelState"].items(), items)
        error = error | {"ModelState": model_state}
    facts = record.facts
    decided = {
        "profileId": record.profile_id,
        "error": error,
        "conflict": record.conflict,
        "fault": record.firing.journal() if record.firing else None,
        "nearMiss": facts.near_miss() if facts is not None and record.firing is None else None,
        "warnings": told or None,
        "cut": {
            name: count
            for name, count in (("headers", headers_cut), ("query", query_cut), ("modelState", errors_cut))
            if count
        }
        or None,
    }
    return entry | {key: value for key, value in decided.items() if value is not None}


def _kept_body() -> tuple[str, bool]:
    """The request body as the journal keeps it, and whether that is a note in its place: read only
    now, after authentication and the view (which read it through the same cache), and never one
    that carries secrets."""
    if _secret_body():
        return REDACTED, True
    try:
        return request.get_data(cache=True).decode("utf-8", "replace"), False
    except RequestEntityTooLarge:
        return "[larger than SANDBOX_MAX_CONTENT_LENGTH]", True
    except ClientDisconnected:
        return "[ended before its declared length]", True


def _secret_body() -> bool:
    """Whether this request's body carries secrets (the token path's, whatever the method)."""
    return request.path.rstrip("/") in current_app.extensions[SECRET_PATHS]


def _body_form(body: str, withheld: bool, limit: int) -> dict:
    """``{"bodyJson": the kept body parsed}``, or ``{"bodyNotParsed": why not}``; nothing for an
    empty body. Only a body kept whole is parsed: one cut short would parse as another, or not at all."""
    if withheld:
        return {"bodyNotParsed": "withheld"}
    if len(body) > limit:
        return {"bodyNotParsed": "truncated"}
    if not body.strip():
        return {}
    # The bytes sent, not the text kept: bytes that are not UTF-8 are as malformed here as for the view.
    value, unparsed = _whole_body_form(request.get_data(cache=True))
    return {"bodyJson": value} if unparsed is None else {"bodyNotParsed": unparsed}


def _whole_body_form(raw: bytes) -> tuple[Any, str | None]:
    """The whole body's parsed form (``formats.parsed_form``), parsed once per request."""
    record = current_record()
    if record.body_form is None:
        record.body_form = formats.parsed_form(raw, request.mimetype, current_app.config["MAX_NESTING_DEPTH"])
    return record.body_form


def _parsed_body() -> Any:
    """The whole request body parsed, for the fault rules that match on it (None: it has no parsed
    form, or cannot be read; the view meets the same error again, and answers it)."""
    # Never a body that carries secrets: a near miss would tell whether a rule guessed one.
    if _secret_body():
        return None
    try:
        raw = request.get_data(cache=True)
    except (RequestEntityTooLarge, ClientDisconnected):
        return None
    return _whole_body_form(raw)[0]


def _log_line(record: RequestRecord, response: Response) -> None:
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": None if record.dropped else response.status_code,
        "durationMs": record.elapsed_ms(),
        "clientId": record.client_id,
        "fault": record.firing.rule_id if record.firing else None,
    }
    if current_app.config["LOG_FORMAT"] == "json":
        log.info(json.dumps(fields))
    else:
        # A path or clientId may carry %0A: escaped, it cannot forge a line of its own.
        log.info(
            "%s %s %s %.1fms client=%s fault=%s",
            _printable(fields["method"]), _printable(fields["path"]), fields["status"] or "-",
            fields["durationMs"], _printable(fields["clientId"] or "-"), fields["fault"] or "-",
        )  # fmt: skip


CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(text: str) -> str:
    """``text`` with its control characters (line breaks among them) written as escapes."""
    return CONTROL_CHARACTERS.sub(lambda found: found[0].encode("unicode_escape").decode("ascii"), text)
