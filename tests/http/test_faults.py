"""Fault rules seen from a real HTTP client: injected errors and delays, before vs after, lifetimes."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import requests
from helpers import Served, auth, minimal_profile, post_json, send_xml, xml_of
from mypreferences_sandbox.testing.control_client import ControlClient, ControlError


def create(profile_url: str, **headers: str):
    return post_json(profile_url, minimal_profile(), **headers)


def test_error_in_the_vendor_shape_with_headers(control, client_id, profile_url, served):
    control.add_fault(match={"clientId": client_id}, respond={"status": 503, "headers": {"Retry-After": "7"}})

    response = create(profile_url)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"Message": "Service Unavailable."}
    assert served.profiles(client_id) == []


@pytest.mark.parametrize(
    ("status", "message"),
    [(500, "An error has occurred."), (401, "Authorization has been denied for this request."),
     (429, "Too Many Requests."), (599, "The sandbox injected this error.")],
)  # fmt: skip
def test_error_messages_follow_the_vendor_stack(control, client_id, profile_url, status, message):
    control.add_fault(match={"clientId": client_id}, respond={"status": status})

    response = create(profile_url, Accept="application/xml")

    assert response.status_code == status
    assert xml_of(response).findtext("Message") == message


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [({"error": "quota"}, "application/json; charset=utf-8", '{"error": "quota"}'),
     ("<html>busy</html>", "text/plain; charset=utf-8", "<html>busy</html>")],
)  # fmt: skip
def test_error_with_a_given_body(control, client_id, profile_url, body, content_type, text):
    control.add_fault(match={"clientId": client_id}, respond={"status": 502, "body": body})

    response = create(profile_url)

    assert (response.status_code, response.headers["Content-Type"], response.text) == (
        502,
        content_type,
        text,
    )


def test_error_after_the_operation_commits_and_a_retry_meets_409(control, client_id, profile_url, served):
    control.add_fault(
        match={"clientId": client_id, "method": "POST"}, when="after", respond={"status": 504}, times=1
    )
    body = minimal_profile(AlternateIds=[{"AlternateIdType": "crm", "AlternateId": "C-1"}])

    first = post_json(profile_url, body)
    retry = post_json(profile_url, body)

    assert first.status_code == 504
    assert retry.status_code == 409
    assert len(served.profiles(client_id)) == 1
    [entry, _] = control.requests(client_id=client_id)
    assert entry["status"] == 504
    assert entry["profileId"] == served.profiles(client_id)[0]["ProfileId"]


def test_fixed_delay_before_the_answer(control, client_id, profile_url):
    control.add_fault(match={"clientId": client_id}, delay={"fixed": 300})

    started = time.monotonic()
    response = create(profile_url)

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3


def test_delay_is_capped_by_configuration():
    with Served({"MAX_DELAY_MS": 200}) as served:
        control = ControlClient(served.url)
        control.add_fault(delay={"lognormal": {"median": 5000, "sigma": 0.1}})
        started = time.monotonic()
        post_json(f"{served.url}/acme/Profile", minimal_profile())
        elapsed = time.monotonic() - started
        with pytest.raises(ControlError) as refused:
            control.add_fault(delay={"fixed": 201})

    assert 0.2 <= elapsed < 2  # capped at 200 ms, not the 5 s median
    assert refused.value.status == 400
    assert refused.value.body["ModelState"] == {
        "delay.fixed": ["201 ms exceeds SANDBOX_MAX_DELAY_MS (200 ms)."]
    }


def test_a_lognormal_delay_of_any_median_is_cut_at_the_cap_never_a_500():
    with Served({"MAX_DELAY_MS": 50}) as served:
        ControlClient(served.url).add_fault(delay={"lognormal": {"median": 1e308, "sigma": 10}})
        started = time.monotonic()
        statuses = [post_json(f"{served.url}/acme/Profile", minimal_profile()).status_code for _ in range(6)]
        elapsed = time.monotonic() - started

    assert statuses == [201] * 6
    assert 6 * 0.05 <= elapsed < 3  # each at the 50 ms cap


def test_uniform_delay_with_an_error(control, client_id, profile_url):
    control.add_fault(
        match={"clientId": client_id},
        delay={"uniform": {"lower": 100, "upper": 150}},
        respond={"status": 500},
    )

    started = time.monotonic()
    response = create(profile_url)

    assert response.status_code == 500
    assert time.monotonic() - started >= 0.1


def test_times_then_the_rule_is_spent(control, client_id, profile_url):
    rule = control.add_fault(match={"clientId": client_id}, respond={"status": 503}, times=2)

    statuses = [create(profile_url).status_code for _ in range(4)]

    assert statuses == [503, 503, 201, 201]
    assert control.fault(rule["id"]) | {} == rule | {
        "matched": 2,
        "hits": 2,
        "remaining": 0,
        "state": "spent",
    }


def test_skip_then_fail_once_is_one_rule(control, client_id, profile_url):
    control.add_fault(match={"clientId": client_id}, respond={"status": 500}, skip=2, times=1)

    statuses = [create(profile_url).status_code for _ in range(4)]

    assert statuses == [201, 201, 500, 201]


def test_probability_with_a_seed_repeats_its_pattern(control, client_id, profile_url):
    patterns = []
    for _ in range(2):
        control.reset(client_id=client_id)
        control.add_fault(match={"clientId": client_id}, respond={"status": 500}, probability=0.5, seed=42)
        patterns.append([create(profile_url).status_code for _ in range(20)])

    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {500, 201}
    assert 3 <= patterns[0].count(500) <= 17


def test_expiry_follows_the_sandbox_clock(client_id, profile_url, control):
    frozen = datetime(2030, 1, 1, tzinfo=UTC)
    control.set_clock(frozen)
    try:
        control.add_fault(match={"clientId": client_id}, respond={"status": 503}, ttl=60_000)
        before = create(profile_url, **auth(frozen)).status_code
        control.advance_clock(61)
        after = create(profile_url, **auth(frozen)).status_code
        [rule] = control.faults(client_id)
    finally:
        control.release_clock()

    assert (before, after) == (503, 201)
    assert (rule["state"], rule["expiresAt"]) == ("expired", "2030-01-01T00:01:00.000Z")


@pytest.mark.parametrize(
    ("match", "hit"),
    [
        ({"method": "GET"}, False),
        ({"method": ["get", "post"]}, True),
        ({"path": "/*/Profile"}, True),
        ({"path": "/other/*"}, False),
        ({"operation": "create_profile"}, True),
        ({"operation": "get_profile"}, False),
        ({"headers": {"X-Test-Case": "retry-*"}}, True),
        ({"headers": {"X-Test-Case": "other"}}, False),
        ({"headers": {"X-Absent": "*"}}, False),
    ],
)
def test_matchers(control, client_id, profile_url, match, hit):
    control.add_fault(match={"clientId": client_id, **match}, respond={"status": 418})

    response = create(profile_url, X_Test_Case="retry-3")

    assert response.status_code == (418 if hit else 201)


def test_a_rule_scoped_to_one_client_does_not_touch_another(control, client_id, base_url):
    control.add_fault(match={"clientId": client_id}, respond={"status": 503})

    mine = create(f"{base_url}/{client_id}/Profile").status_code
    other = create(f"{base_url}/{client_id}-other/Profile").status_code

    assert (mine, other) == (503, 201)


def test_faults_never_apply_to_the_control_plane():
    with Served() as served:
        control = ControlClient(served.url)
        control.add_fault(respond={"status": 500})

        assert control.health()["status"] == "ok"
        assert create(f"{served.url}/acme/Profile").status_code == 500
        assert len(control.faults()) == 1


def test_first_rule_that_fires_wins(control, client_id, profile_url):
    control.add_fault(match={"clientId": client_id}, respond={"status": 503}, times=1)
    control.add_fault(match={"clientId": client_id}, respond={"status": 500}, times=1)

    assert [create(profile_url).status_code for _ in range(3)] == [503, 500, 201]


def test_concurrent_requests_consume_a_rule_exactly(control, client_id, profile_url, served):
    """50 concurrent matching requests against times=10: exactly 10 faults."""
    control.add_fault(match={"clientId": client_id}, respond={"status": 503}, times=10)
    statuses = []
    start = threading.Barrier(50)

    def call() -> None:
        start.wait()
        statuses.append(create(profile_url).status_code)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(statuses) == {503: 10, 201: 40}
    assert len(served.profiles(client_id)) == 40
    assert control.faults(client_id)[0]["hits"] == 10


@pytest.mark.parametrize(
    ("rule", "path", "message"),
    [
        ({}, "body", "A rule needs at least one of delay, respond or fault."),
        ({"respond": {"status": 700}}, "respond.status", "Must be greater than or equal to 200 and less than or equal to 599."),
        ({"respond": {"status": 100}}, "respond.status", "Must be greater than or equal to 200 and less than or equal to 599."),
        ({"respond": {"status": 500, "headers": {"X-A": "\u00e9\n"}}}, "respond.headers", None),
        ({"respond": {"status": 500, "headers": {"Bad Name:": "x"}}}, "respond.headers", None),
        ({"respond": {"status": 500, "headers": {"X-A": "\u20ac"}}}, "respond.headers", None),
        ({"delay": {"lognormal": {"median": 1, "sigma": 5000}}}, "delay.lognormal.sigma", None),
        ({"respond": {"status": 500}, "expiresAt": "9999-12-31T23:59:59-10:00"}, "expiresAt", None),
        ({"respond": {"status": 500}, "ttl": 10**15}, "ttl", None),
        ({"respond": {"status": 500}, "fault": {"type": "EMPTY_RESPONSE"}}, "body",
         "A rule either responds with an error or breaks the connection, not both."),
        ({"fault": {"type": "EXPLODE"}}, "fault.type", None),
        ({"fault": {"type": "DRIBBLE"}, "when": "before"}, "when", "DRIBBLE shapes the real response: it needs when 'after'."),
        ({"delay": {"fixed": 1, "uniform": {"lower": 1, "upper": 2}}}, "delay", "Give exactly one of fixed, uniform or lognormal."),
        ({"delay": {"uniform": {"lower": 5, "upper": 2}}}, "delay.uniform.lower", "lower must not exceed upper."),
        ({"delay": {"fixed": -1}}, "delay.fixed", None),
        ({"respond": {"status": 500}, "times": 0}, "times", None),
        ({"respond": {"status": 500}, "probability": 1.5}, "probability", None),
        ({"respond": {"status": 500}, "ttl": 5, "expiresAt": "2030-01-01T00:00:00Z"}, "body", "Give expiresAt or ttl, not both."),
        ({"respond": {"status": 500}, "match": {"operation": "nope"}}, "match.operation", None),
        ({"respond": {"status": 500}, "match": {"colour": "red"}}, "match.colour", ["Unknown field."]),
        ({"respond": {"status": 500}, "when": "during"}, "when", None),
    ],
)  # fmt: skip
def test_bad_rules_are_400_naming_the_problem(control, rule, path, message):
    """Each is refused when added (some used to be accepted and then fail every matching request)."""
    with pytest.raises(ControlError) as refused:
        control.add_fault(rule)

    assert refused.value.status == 400
    model_state = refused.value.body["ModelState"]
    assert any(key == path or key.startswith(f"{path}.") for key in model_state), model_state
    if isinstance(message, list):
        assert model_state[path] == message
    elif message:
        assert model_state[path] == [message]


def test_the_finished_rules_listed_are_bounded_by_the_setting():
    with Served({"MAX_FINISHED_FAULTS": 2}) as served:
        control = ControlClient(served.url)
        added = [
            control.add_fault(match={"clientId": "acme"}, respond={"status": 503}, times=1)["id"]
            for _ in range(3)
        ]
        for _ in added:
            requests.get(f"{served.url}/acme/Profile/1", headers=auth(), timeout=10)
        listed = [rule["id"] for rule in control.faults()]

    assert listed == added[1:]  # the first to finish is dropped


# --- the size of a rule, and how many are active ------------------------------------------------


def fnmatch_cached() -> int:
    """How many patterns fnmatch's module cache holds (up to 32,768, kept for the process's life)."""
    return fnmatch._compile_pattern.cache_info().currsize


def test_distinct_rule_globs_are_compiled_when_added_and_fill_no_cache(control, client_id, base_url):
    """Each request used to compile every rule's globs through fnmatch's cache, under the registry's
    lock: 20,000 distinct globs made a request wait minutes and kept a gigabyte."""
    for index in range(40):
        control.add_fault(
            match={"clientId": client_id, "path": f"/{client_id}/Profile/{index}*[12]?" + "*[12]?" * 100,
                   "headers": {"X-Case": f"case-{index}-*"}},
            respond={"status": 500 + index % 4},
        )  # fmt: skip
    fnmatch._compile_pattern.cache_clear()

    misses = [
        requests.get(f"{base_url}/{client_id}/Profile/{i}", headers=auth(), timeout=10) for i in range(40)
    ]
    # Each "*[12]?" takes a "12"; the header tells rule 39 from rule 3, whose path glob also matches.
    hit = requests.get(
        f"{base_url}/{client_id}/Profile/39{'12' * 101}",
        headers={**auth(), "X-Case": "case-39-x"},
        timeout=10,
    )

    assert {response.status_code for response in misses} == {404}  # no glob matched: no profile there
    assert hit.status_code == 503
    assert [rule["hits"] for rule in control.faults(client_id)] == [0] * 39 + [1]
    assert fnmatch_cached() == 0


@pytest.mark.parametrize(
    ("match", "path"),
    [({"path": "/*" * 500 + "x"}, "match.path"), ({"headers": {"X-Case": "?" * 1001}}, "match.headers")],
    ids=["path", "header-value"],
)
def test_a_glob_of_more_than_1000_characters_is_refused(control, client_id, match, path):
    with pytest.raises(ControlError) as refused:
        control.add_fault(match={"clientId": client_id, **match}, respond={"status": 503})
    accepted = control.add_fault(match={"clientId": client_id, "path": "?" * 1000}, respond={"status": 503})

    assert refused.value.status == 400
    [(key, [message])] = refused.value.body["ModelState"].items()
    assert key.startswith(path)
    assert message == "A glob has at most 1000 characters; this one has 1001."
    assert accepted["match"]["path"] == "?" * 1000
    assert [rule["id"] for rule in control.faults(client_id)] == [accepted["id"]]


def test_active_rules_are_bounded_by_the_setting():
    with Served({"MAX_FAULT_RULES": 2}) as served:
        control = ControlClient(served.url)
        once = control.add_fault(match={"clientId": "acme"}, respond={"status": 503}, times=1)
        kept = control.add_fault(match={"clientId": "beta"}, respond={"status": 503})
        with pytest.raises(ControlError) as full:
            control.add_fault(respond={"status": 500})
        listed_when_full = [rule["id"] for rule in control.faults()]
        requests.get(f"{served.url}/acme/Profile/1", headers=auth(), timeout=10)  # spends `once`
        after_spent = control.add_fault(match={"clientId": "acme"}, respond={"status": 502})
        with pytest.raises(ControlError) as full_again:
            control.add_fault(respond={"status": 500})
        control.delete_fault(kept["id"])
        after_delete = control.add_fault(respond={"status": 500})

    assert full.value.status == 409
    assert full.value.body == {
        "Message": "The sandbox holds 2 active fault rules, as many as SANDBOX_MAX_FAULT_RULES (2) "
        "allows: delete some, or raise the setting."
    }
    assert listed_when_full == [once["id"], kept["id"]]
    assert full_again.value.status == 409
    assert (after_spent["id"], after_delete["id"]) == ("f3", "f4")  # refused calls take no id


FORTY_NINE = {f"X-H{index:02}": "v" * 150 for index in range(49)}


@pytest.mark.parametrize(
    ("rule", "path", "message"),
    [
        ({"respond": {"status": 503, "headers": {"X-Big": "x" * 1_000_000}}}, "respond.headers",
         "The line of header X-Big takes 1000007 bytes; injected headers take at most 8190 bytes, as "
         "'Name: value' lines, so that clients read them."),
        ({"respond": {"status": 503, "headers": {"X-A": "x" * 8186}}}, "respond.headers", None),
        ({"respond": {"status": 503, "headers": {"X-A": "x" * 5000, "X-B": "x" * 5000}}}, "respond.headers",
         "The injected headers take 10010 bytes; at most 8190, as 'Name: value' lines, so that clients "
         "read them."),
        ({"respond": {"status": 503, "headers": {f"X-{index}": "1" for index in range(51)}}},
         "respond.headers", "A rule injects at most 50 headers, not 51."),
        ({"respond": {"status": 503, "headers": {f"X-{index}": "1" for index in range(20_000)}}},
         "respond.headers", "A rule injects at most 50 headers, not 20000."),
        ({"respond": {"status": 503, "headers": {"X-A\n": "1"}}}, "respond.headers", None),
        ({"respond": {"status": 503, "headers": {"": "1"}}}, "respond.headers", None),
        ({"respond": {"status": 503, "headers": {"Content-Length": "5"}}}, "respond.headers", None),
        ({"respond": {"status": 503, "headers": {"transfer-encoding": "chunked"}}}, "respond.headers", None),
        ({"respond": {"status": 503, "headers": {"Connection": "close"}}}, "respond.headers",
         "Connection is a hop-by-hop header, which a WSGI application may not send."),
        ({"respond": {"status": 503}, "match": {"headers": {"": "*"}}}, "match.headers",
         "Not a valid header name: a header name is an HTTP token."),
        ({"respond": {"status": 503}, "match": {"headers": {"X Case": "*"}}}, "match.headers", None),
        ({"respond": {"status": 503}, "match": {"headers": {"X-Case\n": "*"}}}, "match.headers", None),
        ({"respond": {"status": 503}, "match": {"headers": {f"X-{i}": "*" for i in range(11)}}},
         "match.headers", "A rule matches on at most 10 headers, not 11."),
        ({"respond": {"status": 503}, "match": {"method": ""}}, "match.method",
         "Not a valid method: a method is an HTTP token."),
        ({"respond": {"status": 503}, "seed": 1.5}, "seed", "Not a valid integer."),
        ({"respond": {"status": 503}, "times": 1.5}, "times", "Not a valid integer."),
        ({"respond": {"status": 503}, "times": "2"}, "times", "Not a valid integer."),
        ({"respond": {"status": 503}, "skip": 0.5}, "skip", "Not a valid integer."),
        ({"respond": {"status": 503}, "ttl": 100.5}, "ttl", "Not a valid integer."),
        ({"respond": {"status": 503.5}}, "respond.status", "Not a valid integer."),
        ({"delay": {"fixed": 10.5}}, "delay.fixed", "Not a valid integer."),
        ({"delay": {"uniform": {"lower": 0.5, "upper": 2}}}, "delay.uniform.lower", "Not a valid integer."),
        ({"fault": {"type": "DRIBBLE", "chunks": 2.5}, "when": "after"}, "fault.chunks",
         "Not a valid integer."),
    ],
    ids=["header-of-a-megabyte", "header-line-of-8191-bytes", "headers-of-10-kb", "51-headers",
         "20000-headers", "header-name-ending-in-a-newline", "empty-header-name", "content-length",
         "transfer-encoding", "hop-by-hop", "empty-match-header-name", "match-header-name-not-a-token",
         "match-header-name-ending-in-a-newline", "11-match-headers", "empty-method", "fractional-seed",
         "fractional-times", "times-as-text", "fractional-skip", "fractional-ttl", "fractional-status",
         "fractional-fixed-delay", "fractional-uniform-bound", "fractional-chunks"],
)  # fmt: skip
def test_rules_that_would_fail_or_never_match_their_requests_are_400(control, client_id, rule, path, message):
    """Each was accepted, then broke the client (LineTooLong, "got more than 100 headers", a body
    misread), could never match, or was silently rounded."""
    with pytest.raises(ControlError) as refused:
        control.add_fault({**rule, "match": {"clientId": client_id, **rule.get("match", {})}})

    assert refused.value.status == 400
    model_state = refused.value.body["ModelState"]
    assert any(key == path or key.startswith((f"{path}.", f"{path}[")) for key in model_state), model_state
    if message:
        assert next(iter(model_state.values())) == [message]
    assert control.faults(client_id) == []


def test_the_largest_injected_headers_accepted_reach_the_client_whole(control, client_id, profile_url):
    """50 headers taking 8,190 bytes together: what a rule may inject, a client reads."""
    headers = {
        **FORTY_NINE,
        "X-Last": "z" * (8190 - sum(len(n) + 2 + len(v) for n, v in FORTY_NINE.items()) - 8),
    }
    control.add_fault(match={"clientId": client_id}, respond={"status": 503, "headers": headers}, times=2)
    single = {"X-Long": "y" * (8190 - len("X-Long: "))}
    control.add_fault(match={"clientId": client_id}, respond={"status": 502, "headers": single}, when="after")

    many = create(profile_url)
    response = create(profile_url)
    long = create(profile_url)

    assert (many.status_code, response.status_code, long.status_code) == (503, 503, 502)
    assert {name: many.headers[name] for name in headers} == headers
    assert long.headers["X-Long"] == single["X-Long"]


def test_a_whole_number_written_as_a_float_is_that_number(control, client_id, profile_url):
    rule = control.add_fault(match={"clientId": client_id}, respond={"status": 503.0}, times=2.0, seed=7.0)

    assert (rule["respond"]["status"], rule["times"], rule["seed"]) == (503, 2, 7)
    assert [create(profile_url).status_code for _ in range(3)] == [503, 503, 201]


# --- body matchers and near misses --------------------------------------------------------------

TO_X = {"/Emails/0/EmailAddress": "x@example.com"}


def create_for(
    profile_url: str, address: str, headers: dict | None = None, **fields: object
) -> requests.Response:
    """A create whose first email address is ``address``, with ``fields`` and ``headers`` added."""
    return post_json(
        profile_url, minimal_profile(Emails=[{"EmailAddress": address}], **fields), **(headers or {})
    )


def test_a_rule_fires_only_for_creates_whose_first_email_address_is_x(control, client_id, profile_url):
    rule = control.add_fault(
        match={"clientId": client_id, "operation": "create_profile", "body": TO_X}, respond={"status": 503}
    )

    of_y = create_for(profile_url, "y@example.com")
    statuses = [
        create_for(profile_url, "x@example.com").status_code,
        post_json(profile_url, minimal_profile(Emails=[{"EmailAddress": "y@example.com"}, {"EmailAddress": "x@example.com"}])).status_code,
        requests.put(f"{profile_url}/{of_y.json()['ProfileId']}", json=minimal_profile(Emails=[{"EmailAddress": "x@example.com"}]), headers=auth(), timeout=10).status_code,
        requests.post(profile_url, data=b'{"Emails": [{"EmailAddress": "x@example.com"}]}', headers={**auth(), "Content-Type": "text/plain"}, timeout=10).status_code,
    ]  # fmt: skip

    assert (of_y.status_code, statuses) == (201, [503, 201, 200, 415])
    assert (control.fault(rule["id"])["match"]["body"], control.fault(rule["id"])["hits"]) == (TO_X, 1)


def test_a_body_matcher_on_an_xml_body_holds_against_its_simple_form(control, client_id, profile_url):
    control.add_fault(
        match={"clientId": client_id, "body": {"/CreateUserProfile/CustomerName/FirstName": "Al"}},
        respond={"status": 503},
    )
    control.add_fault(match={"clientId": client_id, "body": TO_X}, respond={"status": 502})
    xml = "<CustomerName><FirstName>{}</FirstName></CustomerName><Emails><Email><EmailAddress>x@example.com</EmailAddress></Email></Emails>"

    al = send_xml("POST", profile_url, "CreateUserProfile", xml.format("Al"))
    bo = send_xml("POST", profile_url, "CreateUserProfile", xml.format("Bo"))

    assert (al.status_code, bo.status_code) == (503, 201)  # an XML body has no /Emails/0/...


def test_body_matchers_all_hold_and_compare_json_values(control, client_id, profile_url):
    control.add_fault(
        match={"clientId": client_id, "body": {**TO_X, "/Rank": 2, "/Vip": True, "/Note": None}},
        respond={"status": 503},
    )

    statuses = [
        create_for(profile_url, "x@example.com", Rank=2.0, Vip=True, Note=None).status_code,
        create_for(profile_url, "x@example.com", Rank=2, Vip=1, Note=None).status_code,
        create_for(profile_url, "x@example.com", Rank="2", Vip=True, Note=None).status_code,
        create_for(profile_url, "x@example.com", Rank=2, Vip=True).status_code,
        create_for(profile_url, "y@example.com", Rank=2, Vip=True, Note=None).status_code,
    ]

    assert statuses == [503, 201, 201, 201, 201]


def test_a_near_miss_names_the_closest_active_rule_and_what_it_missed(control, client_id, profile_url):
    control.add_fault(
        match={"clientId": client_id, "method": "PUT", "operation": "replace_profile", "body": TO_X},
        respond={"status": 503},
    )
    near = control.add_fault(
        match={"clientId": client_id, "headers": {"X-Case": "retry-*"}, "body": TO_X}, respond={"status": 503}
    )
    read = control.add_fault(
        match={"clientId": client_id, "method": "GET", "operation": "get_profile"}, respond={"status": 503}
    )

    create_for(profile_url, "y@example.com")
    create_for(profile_url, "x@example.com", {"X-Case": "first-1"})
    requests.get(f"{profile_url}/1", headers={**auth(), "X-Case": "retry-1"}, timeout=10)

    missed_two, missed_one, fired = control.requests(client_id=client_id)
    assert missed_two["status"] == 201
    assert missed_two["nearMiss"] == {
        "rule": near["id"],
        "unmet": ["headers.X-Case", "body./Emails/0/EmailAddress"],
    }
    assert missed_one["nearMiss"] == {"rule": near["id"], "unmet": ["headers.X-Case"]}
    assert (fired["fault"]["id"], "nearMiss" in fired) == (read["id"], False)


def test_of_a_tie_the_near_miss_is_the_rule_added_first(control, client_id, profile_url):
    first = control.add_fault(match={"clientId": client_id, "method": "GET"}, respond={"status": 503})
    control.add_fault(match={"clientId": client_id, "operation": "get_profile"}, respond={"status": 503})

    create_for(profile_url, "x@example.com")

    [entry] = control.requests(client_id=client_id)
    assert entry["nearMiss"] == {"rule": first["id"], "unmet": ["method"]}


def test_a_rule_that_matched_but_let_the_request_pass_is_no_near_miss(control, client_id, profile_url):
    control.add_fault(match={"clientId": client_id, "method": "GET"}, respond={"status": 503})
    control.add_fault(match={"clientId": client_id, "method": "POST"}, respond={"status": 503}, skip=1)
    control.add_fault(match={"clientId": client_id, "method": "PUT"}, respond={"status": 503}, probability=0)

    create_for(profile_url, "x@example.com")  # skipped by the second, so no near miss at all
    create_for(profile_url, "x@example.com")  # fires the second

    skipped, fired = control.requests(client_id=client_id)
    assert (skipped["status"], fired["status"]) == (201, 503)
    assert "nearMiss" not in skipped and "nearMiss" not in fired
    requests.put(f"{profile_url}/1", json=minimal_profile(), headers=auth(), timeout=10)  # lost its draw
    assert "nearMiss" not in control.requests(client_id=client_id)[-1]


def test_spent_expired_and_other_clients_rules_are_no_near_miss(control, client_id, profile_url):
    other = f"{client_id}-b"
    control.add_fault(match={"clientId": other, "method": "GET"}, respond={"status": 503})
    control.add_fault(
        match={"clientId": client_id, "headers": {"X-A": "1"}}, respond={"status": 503}, times=1
    )
    control.add_fault(match={"clientId": client_id, "method": "GET"}, respond={"status": 503}, ttl=1)
    time.sleep(0.01)

    fired = create_for(profile_url, "x@example.com", {"X-A": "1"}).status_code
    passed = create_for(profile_url, "x@example.com").status_code
    control.clear_faults(other)

    assert (fired, passed) == (503, 201)
    assert "nearMiss" not in control.requests(client_id=client_id)[-1]


def test_a_near_miss_looks_at_the_first_50_rules_only(control, client_id, profile_url):
    farther = [
        control.add_fault(
            match={"clientId": client_id, "method": "GET", "path": "/nowhere"}, respond={"status": 503}
        )
        for _ in range(50)
    ]
    closer = control.add_fault(match={"clientId": client_id, "method": "GET"}, respond={"status": 503})

    create_for(profile_url, "x@example.com")
    control.delete_fault(farther[0]["id"])
    create_for(profile_url, "x@example.com")

    capped, within = control.requests(client_id=client_id)
    assert capped["nearMiss"] == {"rule": farther[0]["id"], "unmet": ["method", "path"]}
    assert within["nearMiss"] == {"rule": closer["id"], "unmet": ["method"]}


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"Emails/0": "x"}, "match.body", "A JSON Pointer starts with '/', such as /Emails/0/EmailAddress."),
        ({"": "x"}, "match.body", "A JSON Pointer starts with '/', such as /Emails/0/EmailAddress."),
        ({"/a~": "x"}, "match.body", "Not a JSON Pointer: Found invalid escape ~; write '~' as ~0 and '/' as ~1."),
        ({"/" + "a" * 1000: "x"}, "match.body", "A JSON Pointer has at most 1000 characters; this one has 1001."),
        ({f"/a{i}": i for i in range(11)}, "match.body", "At most 10 body matchers, not 11."),
        (["/a", "x"], "match.body", "Not a valid mapping type."),
    ],
    ids=["no-slash", "empty", "bad-escape", "too-long", "eleven", "not-an-object"],
)  # fmt: skip
def test_bad_body_matchers_are_400(control, client_id, body, path, message):
    with pytest.raises(ControlError) as refused:
        control.add_fault(match={"clientId": client_id, "body": body}, respond={"status": 503})

    assert refused.value.status == 400
    [(key, messages)] = refused.value.body["ModelState"].items()
    assert key.startswith(path) and messages == [message]
    assert control.faults(client_id) == []


def test_the_largest_body_matchers_are_taken(control, client_id, profile_url):
    body = {"/" + "k" * 999: 1, **{f"/f{i}": i for i in range(9)}}
    control.add_fault(match={"clientId": client_id, "body": body}, respond={"status": 503})

    response = post_json(profile_url, {**minimal_profile(), "k" * 999: 1, **{f"f{i}": i for i in range(9)}})

    assert response.status_code == 503


def test_a_body_that_carries_secrets_is_never_matched(control, base_url):
    """A near miss would otherwise tell whether a rule guessed a secret another client sent."""
    rule = control.add_fault(
        match={"path": "/oauth/token", "body": {"/client_secret": "s3cret"}}, respond={"status": 503}
    )
    try:
        response = requests.post(f"{base_url}/oauth/token", json={"client_secret": "s3cret"}, timeout=10)
        entry = control.requests(path="/oauth/token")[-1]
    finally:
        control.delete_fault(rule["id"])

    assert response.status_code != 503
    assert entry["nearMiss"] == {"rule": rule["id"], "unmet": ["body./client_secret"]}


@pytest.mark.parametrize("where", ["respond.body", "match.body"])
def test_a_number_beyond_a_double_in_a_rule_is_a_400(control, client_id, base_url, where):
    # Written by hand: json.dumps would write the infinity 1e999 reads as Infinity, which is no JSON.
    respond = '{"status": 500, "body": {"x": 1e999}}' if where == "respond.body" else '{"status": 500}'
    body = '{"/x": [1e999]}' if where == "match.body" else "{}"
    rule = f'{{"match": {{"clientId": "{client_id}", "body": {body}}}, "respond": {respond}}}'

    refused = requests.post(
        f"{base_url}/_sandbox/faults", data=rule, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert refused.status_code == 400
    assert any(key.startswith(where) for key in refused.json()["ModelState"])
    assert control.faults(client_id) == []
