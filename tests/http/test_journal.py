"""The request journal over real HTTP: what it records, its decisions, filters, counts and bound."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator

import pytest
import requests
from helpers import JSON, Served, minimal_profile, post_json, send, send_bytes, send_xml
from mypreferences_sandbox.testing.control_client import ControlClient, ControlError

PAIR = [{"AlternateIdType": "crm", "AlternateId": "C-1"}]


def test_an_entry_records_the_request_and_the_outcome(control, client_id, profile_url):
    created = post_json(f"{profile_url}?source=test", minimal_profile(), X_Trace="t-1").json()

    [entry] = control.requests(client_id=client_id)

    assert entry["method"] == "POST"
    assert entry["path"] == f"/{client_id}/Profile"
    assert entry["clientId"] == client_id
    assert entry["query"] == {"source": ["test"]}
    assert entry["headers"]["X-Trace"] == "t-1"
    assert '"FirstName": "Ann"' in entry["body"]
    assert entry["bodyTruncated"] is False
    assert entry["status"] == 201
    assert entry["durationMs"] >= 0
    assert entry["profileId"] == created["ProfileId"]
    assert entry["time"].endswith("Z")


def test_entries_record_validation_errors_and_conflicts(control, client_id, profile_url):
    post_json(profile_url, minimal_profile(IsActive="maybe"))
    first = post_json(profile_url, minimal_profile(AlternateIds=PAIR)).json()
    post_json(profile_url, minimal_profile(AlternateIds=PAIR))

    invalid, _, conflict = control.requests(client_id=client_id)

    assert invalid["status"] == 400
    assert invalid["error"]["ModelState"] == {
        "IsActive": ["Error converting value \"maybe\" to type 'System.Boolean'."]
    }
    assert conflict["status"] == 409
    assert conflict["conflict"] == {**PAIR[0], "heldBy": first["ProfileId"]}


def test_entries_record_the_fault_that_fired(control, client_id, profile_url):
    rule = control.add_fault(match={"clientId": client_id}, respond={"status": 503}, times=2)
    post_json(profile_url, minimal_profile())

    [entry] = control.requests(client_id=client_id)

    assert entry["status"] == 503
    assert entry["fault"] == {"id": rule["id"], "when": "before", "hits": 1, "remaining": 1}


def test_secrets_never_reach_the_journal(control, client_id, profile_url):
    post_json(
        profile_url,
        minimal_profile(),
        Authorization="PNAUTHINFO3-HMAC-SHA256 Credential=u/2026 Signature=secret",
    )

    [entry] = control.requests(client_id=client_id)

    assert entry["headers"]["Authorization"] == "PNAUTHINFO3-HMAC-SHA256 [redacted]"
    assert "secret" not in str(entry)


def test_filters_and_count(control, client_id, base_url, profile_url):
    created = post_json(profile_url, minimal_profile()).json()
    send("GET", f"{profile_url}/{created['ProfileId']}")
    send("GET", f"{profile_url}/999999")
    post_json(f"{base_url}/{client_id}-b/Profile", minimal_profile())

    assert [e["method"] for e in control.requests(client_id=client_id)] == ["POST", "GET", "GET"]
    assert control.count(client_id=client_id, method="get") == 2
    assert control.count(client_id=client_id, status=404) == 1
    assert control.count(path=f"/{client_id}*/Profile") == 2
    assert [e["status"] for e in control.requests(client_id=client_id, limit=2)] == [200, 404]
    since = control.requests(client_id=client_id)[1]["time"]
    assert control.count(client_id=client_id, since=since) == 2
    assert control.count(client_id=client_id, until="2000-01-01T00:00:00Z") == 0
    control.reset(client_id=f"{client_id}-b")


def test_the_control_plane_is_not_journaled(control, client_id):
    control.faults()
    control.health()

    assert control.count(path="/_sandbox*") == 0


def test_clear_one_client_or_all():
    with Served() as served:
        control = ControlClient(served.url)
        post_json(f"{served.url}/a/Profile", minimal_profile())
        post_json(f"{served.url}/b/Profile", minimal_profile())

        control.clear_requests(client_id="a")
        after_one = [e["clientId"] for e in control.requests()]
        control.clear_requests()
        after_all = control.requests()

    assert (after_one, after_all) == (["b"], [])


def test_the_journal_is_bounded_and_drops_the_oldest():
    with Served({"MAX_JOURNAL_ENTRIES": 3, "MAX_JOURNAL_BODY": 10}) as served:
        control = ControlClient(served.url)
        for index in range(5):
            send("GET", f"{served.url}/acme/Profile/{index + 1000}")
        post_json(f"{served.url}/acme/Profile", minimal_profile())
        entries = control.requests()

    assert [e["path"] for e in entries] == ["/acme/Profile/1003", "/acme/Profile/1004", "/acme/Profile"]
    assert [e["id"] for e in entries] == [4, 5, 6]
    assert (len(entries[-1]["body"]), entries[-1]["bodyTruncated"]) == (10, True)


@pytest.mark.parametrize(
    ("query", "key"),
    [("status=abc", "status"), ("since=yesterday", "since"), ("limit=0", "limit"), ("colour=red", "colour")],
)
def test_bad_filters_are_400(control, query, key):
    response = send("GET", f"{control.base_url}/_sandbox/requests?{query}")

    assert response.status_code == 400
    assert key in response.json()["ModelState"]


def test_the_client_refuses_unknown_filters(control):
    with pytest.raises(TypeError, match="unknown journal filters: colour"):
        control.count(colour="red")
    with pytest.raises(ControlError):
        control.fault("f-none")


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/oauth/token"), ("PUT", "/oauth/token"), ("POST", "/oauth/token/")]
)
def test_a_token_request_body_is_redacted_whatever_its_method_or_route(control, base_url, method, path):
    secret = f"secret-{method}-{len(path)}"
    form = f"grant_type=client_credentials&scope=acme/alice&client_id=cid&client_secret={secret}"

    response = send_bytes(method, f"{base_url}{path}", form.encode(), "application/x-www-form-urlencoded")

    assert response.status_code in (404, 405)
    entries = control.requests(path=path)
    assert entries and entries[-1]["body"] == "[redacted]"
    assert secret not in str(entries)


def test_an_injected_error_after_a_conflict_keeps_the_conflict(control, client_id, profile_url):
    first = post_json(profile_url, minimal_profile(AlternateIds=PAIR)).json()
    control.add_fault(match={"clientId": client_id}, when="after", respond={"status": 500}, times=1)

    response = post_json(profile_url, minimal_profile(AlternateIds=PAIR))

    entry = control.requests(client_id=client_id)[-1]
    assert (response.status_code, entry["status"]) == (500, 500)
    assert entry["conflict"] == {**PAIR[0], "heldBy": first["ProfileId"]}


@pytest.fixture(scope="module")
def auth_off() -> Iterator[Served]:
    """A sandbox with authentication off: the only warnings are the ones the request bodies draw."""
    with Served({"AUTH_MODE": "off"}) as served:
        yield served


def test_warnings_are_journaled_as_the_headers_say_them_escaped_and_capped(auth_off, client_id):
    unknown = {f"Extra{index}": 1 for index in range(90)}

    response = post_json(
        f"{auth_off.url}/{client_id}/Profile", {**minimal_profile(), "Odd\n\u00e9": 1, **unknown}
    )

    [entry] = ControlClient(auth_off.url).requests(client_id=client_id)
    told = [line.strip() for line in response.headers["X-Sandbox-Warning"].split(",")]
    assert entry["warnings"] == told
    assert entry["warnings"][0] == "ignored unknown field 'Odd\\n\\xe9'"
    assert len(entry["warnings"]) == 21
    assert entry["warnings"][-1] == "and 71 more"


def test_the_warning_filter_and_count(auth_off, client_id):
    control, url = ControlClient(auth_off.url), f"{auth_off.url}/{client_id}/Profile"
    post_json(url, minimal_profile(Colour="red"))
    post_json(url, minimal_profile())
    post_json(url, minimal_profile(Shade="dark", Colour="blue"))
    post_json(f"{auth_off.url}/{client_id}-b/Profile", minimal_profile(Colour="green"))

    drew_any = control.requests(client_id=client_id, warning="*")
    counts = {
        glob: control.count(client_id=client_id, warning=glob)
        for glob in ("*", "ignored unknown field 'Colour'", "*'Shade'", "*colour*", "Colour")
    }

    assert [entry["body"] for entry in drew_any] == [
        json.dumps(minimal_profile(Colour="red")),
        json.dumps(minimal_profile(Shade="dark", Colour="blue")),
    ]
    assert drew_any[1]["warnings"] == ["ignored unknown field 'Shade'", "ignored unknown field 'Colour'"]
    assert counts == {
        "*": 2,
        "ignored unknown field 'Colour'": 2,
        "*'Shade'": 1,
        "*colour*": 0,  # case counts, as in the path glob
        "Colour": 0,  # a glob matches a whole line, not a part of one
    }
    assert control.count(path=f"/{client_id}*", warning="*'Colour'") == 3


def test_the_warning_filter_is_documented(served):
    document = send("GET", f"{served.url}/_sandbox/openapi.json").json()

    for path in ("/_sandbox/requests", "/_sandbox/requests/count"):
        [warning] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "warning"]
        assert (warning["in"], warning["schema"]) == ("query", {"type": "string"})
        assert "`*`: the requests that drew any warning" in warning["description"]


# What the sandbox tolerates, each in one request, and the warning that says so.
TOLERATED = [
    pytest.param("json", {"Nickname": "Al"}, "ignored unknown field 'Nickname'", id="unknown-field"),
    pytest.param(
        "json",
        {"AlternateIds": [{"AlternateIdType": "crm", "AlternateId": "1"}]},
        "registered AlternateIdType 'crm' in the open account '*'",
        id="type-registered",
    ),
    pytest.param(
        "json", {"IsActive": "true"}, "converted \"true\" to true for 'IsActive'", id="value-converted"
    ),
    pytest.param(
        "xml",
        "<CustomerType>Member</CustomerType><CustomerName><FirstName>Al</FirstName></CustomerName>",
        "skipped XML element 'CustomerName': out of order *",
        id="xml-member-skipped",
    ),
    pytest.param("json", {}, "PNAUTHINFO3 signature not verified: *", id="signature-not-verified"),
]


@pytest.mark.parametrize(("kind", "body", "warning"), TOLERATED)
def test_what_the_sandbox_tolerates_it_says_in_the_answer_and_the_journal(
    control, client_id, profile_url, kind, body, warning
):
    if kind == "xml":
        response = send_xml("POST", profile_url, "CreateUserProfile", body)
    else:
        response = post_json(profile_url, {**minimal_profile(), **body})

    assert response.status_code == 201, response.text
    told = response.raw.headers.getlist("X-Sandbox-Warning")
    assert [line for line in told if fnmatch.fnmatchcase(line, warning)] != []
    assert control.count(client_id=client_id, warning=warning) == 1
    assert control.requests(client_id=client_id, warning=warning)[0]["warnings"] == told


def test_the_journal_is_bounded_in_bytes_and_an_entry_says_what_it_cut():
    with Served({"MAX_JOURNAL_BYTES": 20_000, "MAX_JOURNAL_ITEMS": 5, "MAX_JOURNAL_BODY": 100}) as served:
        control = ControlClient(served.url)
        big = {f"X-Big-{index}": "v" * 5_000 for index in range(8)}
        for _ in range(40):
            post_json(
                f"{served.url}/acme/Profile?{'&'.join(f'q{i}=1' for i in range(9))}", minimal_profile(), **big
            )
        invalid = send("POST", f"{served.url}/acme/Profile", {"Addresses": [{}] * 30})
        journal = served.app.extensions["sandbox"].journal
        entries = control.requests(client_id="acme")

    assert invalid.status_code == 400
    assert journal.held_bytes <= 20_000
    assert 1 < len(entries) < 41
    first, last = entries[0], entries[-1]
    assert len(first["headers"]) == 5 and all(len(value) <= 100 for value in first["headers"].values())
    assert (
        first["cut"] == {"headers": 8 + len(first["headers"]) - 5 + 3 - 3, "query": 4}
        or first["cut"]["query"] == 4
    )
    assert len(last["error"]["ModelState"]) == 5
    assert last["cut"]["modelState"] == len(invalid.json()["ModelState"]) - 5


def test_distinct_filter_globs_are_not_kept(auth_off, client_id):
    """Each distinct glob used to stay in fnmatch's cache for good (8,000 long ones: +350 MB)."""
    control, url = ControlClient(auth_off.url), f"{auth_off.url}/{client_id}/Profile"
    post_json(url, minimal_profile(Colour="red"))
    post_json(url, minimal_profile())
    fnmatch._compile_pattern.cache_clear()

    listed = [
        len(control.requests(path=f"/{client_id}/*{'?' * i}*", warning=f"*{i}*'Colour'")) for i in range(30)
    ]
    counted = [control.count(path=f"/{client_id}/[P]*{'?' * i}", warning=f"ignored*{i}*") for i in range(30)]

    assert listed == [0] * 30  # no line has a digit before 'Colour'
    assert counted == [0] * 30
    assert control.count(path=f"/{client_id}/[P]rofile", warning="*'Colour'") == 1
    assert fnmatch._compile_pattern.cache_info().currsize == 0


@pytest.mark.parametrize("endpoint", ["/_sandbox/requests", "/_sandbox/requests/count"])
@pytest.mark.parametrize("name", ["path", "warning"])
def test_a_filter_glob_of_more_than_1000_characters_is_400(control, endpoint, name):
    too_long = send("GET", f"{control.base_url}{endpoint}?{name}={'*' * 1001}")
    longest = send("GET", f"{control.base_url}{endpoint}?{name}={'*' * 1000}")

    assert too_long.status_code == 400
    assert too_long.json()["ModelState"] == {name: ["A glob has at most 1000 characters; this one has 1001."]}
    assert longest.status_code == 200


# --- the operation and the parsed body --------------------------------------------------------


def test_an_entry_names_its_operation_or_none_without_a_route(control, client_id, profile_url, base_url):
    post_json(profile_url, minimal_profile())
    send("GET", f"{profile_url}/999999")
    send("GET", f"{base_url}/{client_id}/Nowhere/At/All")

    assert [entry["operation"] for entry in control.requests(client_id=client_id)] == [
        "create_profile",
        "get_profile",
        None,
    ]
    [unrouted] = control.requests(path=f"/{client_id}/Nowhere/*")
    assert (unrouted["operation"], unrouted["clientId"]) == (None, client_id)


def test_a_request_that_no_route_or_method_takes_is_journaled_under_the_paths_client(
    control, client_id, base_url
):
    assert send("DELETE", f"{base_url}/{client_id}/Profile").status_code == 405
    assert send("GET", f"{base_url}/{client_id}/Profil").status_code == 404
    assert send("GET", f"{base_url}/Profiles/{client_id}/Profil").status_code == 404
    strayed = ("/Profiles", "/Profiles//Profil", "/oauth/nowhere")
    for path in (*strayed, "/_sandbox/nowhere"):
        send("GET", f"{base_url}{path}")

    assert [(e["method"], e["path"], e["status"]) for e in control.requests(client_id=client_id)] == [
        ("DELETE", f"/{client_id}/Profile", 405),
        ("GET", f"/{client_id}/Profil", 404),
        ("GET", f"/Profiles/{client_id}/Profil", 404),
    ]
    assert control.count(client_id=client_id) == 3
    # No clientId where the segment is empty or the path is the token issuer's.
    strays = [(e["path"], e["clientId"]) for e in control.requests(limit=20) if e["path"] in strayed]
    assert strays == [(path, None) for path in strayed]


def test_a_json_body_is_kept_as_text_and_parsed(control, client_id, profile_url):
    body = minimal_profile(Emails=[{"EmailAddress": "x@example.com", "IsDefault": True}])
    post_json(profile_url, body)

    [entry] = control.requests(client_id=client_id)

    assert entry["body"] == json.dumps(body)
    assert entry["bodyJson"] == body
    assert "bodyNotParsed" not in entry


def test_an_xml_body_is_parsed_into_its_simple_form(control, client_id, profile_url):
    emails = "".join(
        f"<Email><EmailAddress>{address}</EmailAddress><IsDefault>false</IsDefault></Email>"
        for address in ("a@example.com", "b@example.com")
    )
    inner = f'<CustomerName><FirstName>Al</FirstName><LastName i:nil="true"/></CustomerName><Emails>{emails}</Emails>'

    response = send_xml("POST", profile_url, "CreateUserProfile", inner)

    assert response.status_code == 201, response.text
    [entry] = control.requests(client_id=client_id)
    assert entry["bodyJson"] == {
        "CreateUserProfile": {
            "CustomerName": {"FirstName": "Al", "LastName": ""},
            "Emails": {
                "Email": [
                    {"EmailAddress": "a@example.com", "IsDefault": "false"},
                    {"EmailAddress": "b@example.com", "IsDefault": "false"},
                ]
            },
        }
    }
    assert "xmlns" not in json.dumps(entry["bodyJson"])


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"name=Ann", "application/x-www-form-urlencoded", "not JSON or XML"),
        (b'{"a": 1}', "text/plain", "not JSON or XML"),
        (b'{"a": 1}', None, "not JSON or XML"),
        (b'{"CustomerName": ', "application/json", "malformed"),
        (b'{"a": NaN}', "application/json", "malformed"),
        (b"<CreateUserProfile><a></CreateUserProfile>", "application/xml", "malformed"),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "application/xml", "malformed"),
    ],
    ids=["form", "json-text-as-plain", "no-type", "json-cut", "json-nan", "xml-unclosed", "xml-dtd"],
)
def test_a_body_that_is_not_json_or_xml_is_kept_as_text_and_says_why(
    control, client_id, profile_url, body, content_type, why
):
    send_bytes("POST", profile_url, body, content_type)

    [entry] = control.requests(client_id=client_id)

    assert entry["body"] == body.decode()
    assert "bodyJson" not in entry
    assert entry["bodyNotParsed"] == why


def test_a_body_that_is_not_utf_8_is_malformed_as_the_view_finds_it(control, client_id, profile_url):
    sent = send_bytes("POST", profile_url, '{"CustomerName": {"LastName": "Müller"}}'.encode("latin-1"), JSON)

    [entry] = control.requests(client_id=client_id)

    assert sent.status_code == 400
    assert (entry["bodyNotParsed"], "bodyJson" in entry) == ("malformed", False)


def test_an_empty_body_has_neither_a_parsed_form_nor_a_reason(control, client_id, profile_url):
    send("GET", f"{profile_url}/1")

    [entry] = control.requests(client_id=client_id)

    assert (entry["body"], "bodyJson" in entry, "bodyNotParsed" in entry) == ("", False, False)


def test_a_body_cut_short_is_never_parsed_and_one_kept_whole_is(control, client_id, profile_url):
    limit = 4096  # SANDBOX_MAX_JOURNAL_BODY's default, which the served sandbox keeps
    padding = limit - len(json.dumps(minimal_profile(Note="")))
    whole, cut = minimal_profile(Note="n" * padding), minimal_profile(Note="n" * (padding + 1))
    assert (len(json.dumps(whole)), len(json.dumps(cut))) == (limit, limit + 1)

    post_json(profile_url, whole)
    post_json(profile_url, cut)

    kept, truncated = control.requests(client_id=client_id)
    assert (kept["bodyTruncated"], kept["bodyJson"], "bodyNotParsed" in kept) == (False, whole, False)
    assert (truncated["bodyTruncated"], truncated["bodyNotParsed"]) == (True, "truncated")
    assert "bodyJson" not in truncated
    assert truncated["body"] == json.dumps(cut)[:limit]


def test_a_redacted_body_is_withheld_not_parsed(control, base_url):
    form = "grant_type=client_credentials&client_id=cid&client_secret=s"
    send_bytes("POST", f"{base_url}/oauth/token", form.encode(), "application/json")

    entry = control.requests(path="/oauth/token")[-1]

    assert (entry["body"], entry["bodyNotParsed"], "bodyJson" in entry) == ("[redacted]", "withheld", False)


# --- the body filter ----------------------------------------------------------------------------


def email(address: str, **fields: object) -> dict:
    return {"EmailAddress": address, **fields}


def test_count_the_creates_whose_first_email_address_is_x(control, client_id, profile_url, base_url):
    post_json(profile_url, minimal_profile(Emails=[email("x@example.com")]))
    post_json(profile_url, minimal_profile(Emails=[email("y@example.com")]))
    post_json(profile_url, minimal_profile(Emails=[email("y@example.com"), email("x@example.com")]))
    post_json(profile_url, minimal_profile(Emails=[email("x@example.com")], AlternateIds=PAIR))
    send(
        "PUT",
        f"{profile_url}?alternateIdType=crm&alternateId=C-1",
        minimal_profile(Emails=[email("x@example.com")]),
    )

    query = f"clientId={client_id}&operation=create_profile&body=/Emails/0/EmailAddress=x@example.com"
    raw = send("GET", f"{base_url}/_sandbox/requests/count?{query}").json()

    assert raw == {"count": 2}
    assert control.count(client_id=client_id, body={"/Emails/0/EmailAddress": "x@example.com"}) == 3
    creates_of_x = control.requests(
        client_id=client_id, operation="create_profile", body={"/Emails/0/EmailAddress": "x@example.com"}
    )
    assert [entry["bodyJson"]["Emails"][0]["EmailAddress"] for entry in creates_of_x] == ["x@example.com"] * 2
    assert control.count(client_id=client_id, operation="replace_by_alternate_id") == 1


@pytest.mark.parametrize(
    ("condition", "count"),
    [
        ("/Emails/0/IsDefault=true", 1),
        ("/Emails/0/IsDefault=1", 0),  # a number is not a boolean
        ("/Emails/0/IsDefault=\"true\"", 0),  # nor is a string
        ("/Emails/0/Rank=2", 1),
        ("/Emails/0/Rank=2.0", 1),  # a number is compared by value
        ("/Emails/0/Rank=\"2\"", 0),
        ("/Emails/0/Code=007", 1),  # not JSON (a leading zero): compared as text
        ("/Emails/0/Code=\"007\"", 1),
        ("/Emails/0/Note=null", 1),
        ("/Emails/0/Note=", 0),
        ("/Emails/0/Tags=[\"a\",\"b\"]", 1),
        ("/Emails/0/Tags=[\"b\",\"a\"]", 0),
        ("/Emails/0=" + json.dumps(email("x@example.com", IsDefault=True, Rank=2, Code="007", Note=None, Tags=["a", "b"])), 1),
        ("/Emails/0/EmailAddress=x@example.com=y", 0),  # the pointer ends at the first "="
        ("/Emails/1/EmailAddress=x@example.com", 0),  # past the end
        ("/Emails/-=x@example.com", 0),
        ("/Emails/0/EmailAddress/0=x", 0),  # a string is not indexed
        ("/Emails/00/EmailAddress=x@example.com", 0),
        ("/a~1b=1", 1),
        ("/m~0n=2", 1),
        ("/=3", 1),  # the member named ""
    ],
)  # fmt: skip
def test_body_conditions_compare_json_values(control, client_id, profile_url, base_url, condition, count):
    first = email("x@example.com", IsDefault=True, Rank=2, Code="007", Note=None, Tags=["a", "b"])
    post_json(profile_url, {**minimal_profile(Emails=[first]), "a/b": 1, "m~n": 2, "": 3})

    params = {"clientId": client_id, "body": condition}
    response = requests.get(f"{base_url}/_sandbox/requests/count", params=params, timeout=10)

    assert response.json() == {"count": count}


def test_body_conditions_all_hold_and_an_xml_body_matches_its_simple_form(control, client_id, profile_url):
    post_json(profile_url, minimal_profile(Emails=[email("x@example.com", IsDefault=True)]))
    post_json(profile_url, minimal_profile(Emails=[email("x@example.com", IsDefault=False)]))
    send_xml(
        "POST", profile_url, "CreateUserProfile", "<CustomerName><FirstName>42</FirstName></CustomerName>"
    )

    both = {"/Emails/0/EmailAddress": "x@example.com", "/Emails/0/IsDefault": False}
    assert control.count(client_id=client_id, body=both) == 1
    assert control.count(client_id=client_id, body={"/CreateUserProfile/CustomerName/FirstName": "42"}) == 1
    assert control.count(client_id=client_id, body={"/CreateUserProfile/CustomerName/FirstName": 42}) == 0
    assert control.count(client_id=client_id, body={"/CustomerName/FirstName": "Ann"}) == 2


def test_an_entry_without_a_parsed_body_matches_no_body_filter(control, client_id, profile_url):
    send_bytes("POST", profile_url, b'{"Emails": [{"EmailAddress": "x@example.com"}]}', "text/plain")
    post_json(profile_url, minimal_profile(Emails=[email("x@example.com")], Note="n" * 5000))

    assert control.count(client_id=client_id) == 2
    assert control.count(client_id=client_id, body={"/Emails/0/EmailAddress": "x@example.com"}) == 0


@pytest.mark.parametrize(
    ("query", "key", "message"),
    [
        ("body=/Emails/0/EmailAddress", "body[0]", "Write body=<JSON Pointer>=<value>, such as body=/Emails/0/EmailAddress=ann@example.com."),
        ("body=Emails/0=x", "body[0]", "A JSON Pointer starts with '/', such as /Emails/0/EmailAddress."),
        ("body==x", "body[0]", "A JSON Pointer starts with '/', such as /Emails/0/EmailAddress."),
        ("body=/a~2=x", "body[0]", "Not a JSON Pointer: Found invalid escape ~2; write '~' as ~0 and '/' as ~1."),
        ("body=/a=1&body=/b", "body[1]", "Write body=<JSON Pointer>=<value>, such as body=/Emails/0/EmailAddress=ann@example.com."),
        (f"body=/{'a' * 1000}=x", "body[0]", "A JSON Pointer has at most 1000 characters; this one has 1001."),
        ("&".join(f"body=/a{i}=1" for i in range(11)), "body", "At most 10 body matchers, not 11."),
        ("body=/a=" + "[" * 5000, "body[0]", "The value is nested too deeply to read as JSON."),
        ("operation=create", "operation", None),
    ],
    ids=["no-value", "no-slash", "empty-pointer", "bad-escape", "second-bad", "pointer-too-long", "eleven", "too-deep", "unknown-operation"],
)  # fmt: skip
@pytest.mark.parametrize("endpoint", ["/_sandbox/requests", "/_sandbox/requests/count"])
def test_bad_body_and_operation_filters_are_400(control, endpoint, query, key, message):
    response = send("GET", f"{control.base_url}{endpoint}?{query}")

    assert response.status_code == 400
    model_state = response.json()["ModelState"]
    assert list(model_state) == [key]
    if message:
        assert model_state[key] == [message]
    else:
        assert "create_profile" in model_state[key][0]


def test_ten_body_conditions_and_a_pointer_of_1000_characters_are_taken(control, client_id, profile_url):
    post_json(profile_url, {**minimal_profile(), "k" * 999: 1, **{f"f{i}": i for i in range(9)}})
    conditions = {f"/{'k' * 999}": 1, **{f"/f{i}": i for i in range(9)}}

    assert control.count(client_id=client_id, body=conditions) == 1


def test_the_client_sends_body_values_as_json_and_refuses_a_pointer_with_equals(
    control, client_id, profile_url
):
    post_json(profile_url, {**minimal_profile(), "Code": "42", "Rank": 42})

    assert control.count(client_id=client_id, body={"/Code": "42"}) == 1
    assert control.count(client_id=client_id, body={"/Code": 42}) == 0
    assert control.count(client_id=client_id, body={"/Rank": 42, "/Code": "42"}) == 1
    with pytest.raises(ValueError, match="cannot hold '='"):
        control.count(body={"/a=b": 1})


def test_the_body_filter_and_the_new_entry_fields_are_documented(served):
    document = send("GET", f"{served.url}/_sandbox/openapi.json").json()

    for path in ("/_sandbox/requests", "/_sandbox/requests/count"):
        parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert parameters["body"]["schema"] == {"type": "array", "items": {"type": "string"}}
        assert "`<JSON Pointer>=<value>`" in parameters["body"]["description"]
        assert parameters["operation"]["schema"] == {"type": "string"}
    entry = document["components"]["schemas"]["JournalEntry"]["properties"]
    assert {"operation", "bodyJson", "bodyNotParsed", "nearMiss"} <= set(entry)
    assert entry["bodyNotParsed"]["enum"] == ["truncated", "malformed", "not JSON or XML", "withheld"]


@pytest.mark.parametrize(
    "query",
    ["operation=create_profile&operation=get_profile", "status=200&status=404", "clientId=a&clientId=b",
     "path=/a&path=/b", "limit=1&limit=2"],
)  # fmt: skip
@pytest.mark.parametrize("endpoint", ["/_sandbox/requests", "/_sandbox/requests/count"])
def test_a_filter_given_twice_is_400_naming_it(control, endpoint, query):
    name = query.partition("=")[0]
    response = send("GET", f"{control.base_url}{endpoint}?{query}")

    assert response.status_code == 400
    assert response.json()["ModelState"] == {name: [f"The filter '{name}' is given twice; give it once."]}


def test_body_given_twice_means_both_hold(control, client_id, profile_url):
    post_json(profile_url, minimal_profile())
    url = f"{control.base_url}/_sandbox/requests/count?clientId={client_id}&body=/CustomerName/FirstName=Ann"

    assert send("GET", url).json() == {"count": 1}
    assert send("GET", f"{url}&body=/CustomerName/LastName=Example").json() == {"count": 1}
    assert send("GET", f"{url}&body=/CustomerName/FirstName=Bob").json() == {"count": 0}
