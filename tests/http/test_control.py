"""The control plane over real HTTP: health, reset, state, clock, its lock, and its payload checks."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
from helpers import FIXTURES, JSON, Served, auth, fixture_json, minimal_profile, post_json, send
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mypreferences_sandbox import create_app
from mypreferences_sandbox.testing.control_client import ControlClient, ControlError


@pytest.fixture
def fresh():
    """A server of its own, for tests that reset everything."""
    with Served() as served:
        yield served, ControlClient(served.url)


def test_health(control, served):
    store = "memory" if served.app.config["STORE"] == "memory" else "redis"

    assert control.health() == {"status": "ok", "version": "0.1.0", "store": store}


def test_reset_everything(fresh):
    served, control = fresh
    post_json(f"{served.url}/acme/Profile", minimal_profile())
    control.add_fault(respond={"status": 500}, match={"clientId": "other"})
    control.set_clock("2030-01-01T00:00:00Z")

    control.reset()

    assert served.profiles("acme") == []
    assert (control.faults(), control.requests(), control.clock()["frozen"]) == ([], [], False)
    assert post_json(f"{served.url}/acme/Profile", minimal_profile()).json()["ProfileId"] == 1
    assert control.add_fault(respond={"status": 500})["id"] == "f1"


def test_reset_one_client_leaves_the_others_intact(fresh):
    served, control = fresh
    for client in ("a", "b"):
        post_json(
            f"{served.url}/{client}/Profile",
            minimal_profile(AlternateIds=[{"AlternateIdType": "t", "AlternateId": "1"}]),
        )
        control.add_fault(match={"clientId": client}, delay={"fixed": 1})

    control.reset(client_id="a")

    assert (served.profiles("a"), len(served.profiles("b"))) == ([], 1)
    assert [rule["match"] for rule in control.faults()] == [{"clientId": "b"}]
    assert [entry["clientId"] for entry in control.requests()] == ["b"]
    assert (
        post_json(
            f"{served.url}/a/Profile",
            minimal_profile(AlternateIds=[{"AlternateIdType": "t", "AlternateId": "1"}]),
        ).json()["ProfileId"]
        == 3
    )


def test_reset_by_query_parameter(fresh):
    served, _ = fresh
    post_json(f"{served.url}/a/Profile", minimal_profile())

    assert send("POST", f"{served.url}/_sandbox/reset?clientId=a").json() == {"reset": "a"}
    assert served.profiles("a") == []


def test_seed_makes_random_choices_repeat(fresh):
    served, control = fresh
    patterns = []
    for _ in range(2):
        control.reset(seed=9)
        control.add_fault(respond={"status": 500}, probability=0.5)
        patterns.append(
            [post_json(f"{served.url}/a/Profile", minimal_profile()).status_code for _ in range(16)]
        )

    assert patterns[0] == patterns[1]
    assert len(set(patterns[0])) == 2


def test_export_then_import_round_trips_exactly(fresh):
    served, control = fresh
    control.import_state(fixture_json("seed.json"))
    send(
        "POST",
        f"{served.url}/acme/Consents/1001",
        {"Consents": [{"ConsentType": "sms", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 2}]},
    )
    exported = control.export_state()

    control.reset()
    control.import_state(exported)

    assert control.export_state() == exported
    # By clientId, the same on every process whatever its hash seed.
    assert list(exported["clients"]) == ["acme", "globex"]
    assert control.export_state("globex") == {
        "clients": {"globex": exported["clients"]["globex"]},
        "accounts": {},
    }


def test_imported_profiles_answer_like_created_ones(fresh):
    served, control = fresh

    imported = control.import_state(fixture_json("seed.json"))

    assert imported == {"imported": {"acme": 2, "globex": 1}, "accounts": []}
    ann = send("GET", f"{served.url}/acme/Profile/AlternateIdType/crm/AlternateId/crm-1001").json()
    assert (ann["ProfileId"], ann["Addresses"][0]["Country"], ann["Addresses"][0]["CassStatus"]) == (
        1001,
        "United States",
        "Y",
    )
    assert ann["Consents"][0]["ConsentStatus"] == 1
    bob = send("GET", f"{served.url}/acme/Profile/1002").json()
    assert (bob["IsActive"], bob["ReasonCode"]) == (False, "asked to leave")
    [chloe] = served.profiles("globex")
    assert chloe["ProfileId"] == 1003  # assigned after the highest imported id
    assert post_json(f"{served.url}/acme/Profile", minimal_profile()).json()["ProfileId"] == 1004


@pytest.mark.parametrize(
    ("document", "status", "keys"),
    [
        ({"clients": {"acme": [{"Emails": [{}]}]}}, 400, ["clients.acme[0].Emails[0].EmailAddress"]),
        (
            {"clients": {"acme": [{"ProfileId": "7"}, "x"]}},
            400,
            ["clients.acme[0].ProfileId", "clients.acme[1]"],
        ),
        ({"clients": {"acme": [{"ProfileId": 5}, {"ProfileId": 5}]}}, 409, None),
        (
            {"clients": {"acme": [{"AlternateIds": [{"AlternateIdType": "t", "AlternateId": "1"}]}] * 2}},
            409,
            None,
        ),
        ({"clients": ["acme"]}, 400, ["clients"]),
        ({"accounts": {"acme": {"AlternateIdTypes": "CRM"}}}, 400, ["accounts.acme"]),
        ({"accounts": {"acme": {"Tags": [{"Description": "no name"}]}}}, 400, ["accounts.acme"]),
        ({"accounts": {"acme": {"DefaultLocale": "fr_FR"}}}, 400, ["accounts.acme"]),
        ({"clients": {"..": []}}, 400, ["clients....key"]),
    ],
)
def test_a_bad_state_document_changes_nothing(fresh, document, status, keys):
    served, control = fresh
    post_json(f"{served.url}/acme/Profile", minimal_profile())
    before = control.export_state()

    with pytest.raises(ControlError) as refused:
        control.import_state(document)

    assert refused.value.status == status
    if keys:
        assert sorted(refused.value.body["ModelState"]) == keys
    assert control.export_state() == before


def test_seed_file_loads_at_start_up():
    with Served({"SEED_FILE": str(FIXTURES / "seed.json")}) as served:
        assert [p["ProfileId"] for p in served.profiles("acme")] == [1001, 1002]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("{", "not valid JSON"),
        ('{"clients": {"a": [{"Emails": [{}]}]}}', "EmailAddress"),
    ],
)
def test_unusable_seed_file_is_refused(tmp_path, content, message):
    path = tmp_path / "seed.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ValueError, match=message):
        create_app({"SEED_FILE": str(path)})


def test_clock_drives_edited_timestamps(control, profile_url):
    frozen = datetime(2030, 1, 1, 9, tzinfo=UTC)
    control.set_clock(frozen)
    try:
        created = post_json(profile_url, minimal_profile(), **auth(frozen)).json()
        advanced = control.advance_clock(900)
        updated = send("POST", f"{profile_url}/{created['ProfileId']}", {}, **auth(frozen)).json()
    finally:
        released = control.release_clock()

    assert created["Edited"]["CreateDate"] == "2030-01-01T09:00:00.000Z"
    assert advanced == {"now": "2030-01-01T09:15:00.000Z", "frozen": True}
    assert updated["Edited"]["ModifiedDate"] == "2030-01-01T09:15:00.000Z"
    assert released["frozen"] is False
    assert released["now"] < "2030"


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("PUT", "/clock", {"time": "soon"}, "time"),
        ("PUT", "/clock", {}, "time"),
        ("POST", "/clock/advance", {"seconds": -1}, "seconds"),
        ("POST", "/reset", {"seed": "x"}, "seed"),
        ("POST", "/reset", ["all"], "body"),
        ("POST", "/faults", "not json", "body"),
    ],
)
def test_bad_payloads_are_400_naming_the_problem(control, method, path, body, key):
    data = body if isinstance(body, str) else json.dumps(body)

    response = requests.request(method, f"{control.base_url}/_sandbox{path}", data=data, timeout=10)

    assert response.status_code == 400
    assert key in response.json()["ModelState"]


def test_the_token_locks_every_call_but_health():
    with Served({"CONTROL_TOKEN": "s3cret"}) as served:
        locked = ControlClient(served.url)
        unlocked = ControlClient(served.url, token="s3cret")
        health = locked.health()
        with pytest.raises(ControlError) as missing:
            locked.faults()
        wrong = send("GET", f"{served.url}/_sandbox/faults", Authorization="Bearer nope")
        odd = send("GET", f"{served.url}/_sandbox/faults", Authorization="Bearer ñ")
        allowed = unlocked.faults()

    assert health["status"] == "ok"
    assert missing.value.status == 401
    assert missing.value.body == {
        "Message": "The control plane needs 'Authorization: Bearer <SANDBOX_CONTROL_TOKEN>'."
    }
    assert (wrong.status_code, odd.status_code, wrong.headers["WWW-Authenticate"]) == (
        401,
        401,
        'Bearer realm="mypreferences-sandbox"',
    )
    assert allowed == []


def test_a_numeric_token_from_the_environment_works(monkeypatch):
    monkeypatch.setenv("SANDBOX_CONTROL_TOKEN", "12345")
    with Served() as served:
        assert ControlClient(served.url, token="12345").faults() == []


def test_the_control_plane_can_be_turned_off():
    with Served({"CONTROL": False}) as served:
        health = send("GET", f"{served.url}/_sandbox/health")
        faults = send("POST", f"{served.url}/_sandbox/faults", {"respond": {"status": 500}})

    assert health.status_code == 200
    assert faults.status_code == 404
    assert faults.json() == {"Message": "The control plane is turned off (SANDBOX_CONTROL=false)."}


control_paths = st.sampled_from(
    ["/reset", "/faults", "/faults/f1", "/requests", "/requests/count", "/state", "/clock", "/clock/advance"]
)
extremes = st.sampled_from(
    [
        10**30,
        -(10**30),
        1e308,
        "9999-12-31T23:59:59-10:00",
        "0001-01-01T00:00:00+10:00",
        "\u0000\n",
        "",
        "_sandbox",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | extremes,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["match", "respond", "fault", "delay", "status", "type", "clients", "time", "seconds", "seed",
                         "clientId", "headers", "ttl", "expiresAt", "lognormal", "median", "sigma", "fixed", "x"]),
        children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=control_paths, body=json_values)
def test_no_control_call_gets_a_500(fresh, method, path, body):
    served, _ = fresh

    response = requests.request(method, f"{served.url}/_sandbox{path}", data=json.dumps(body), timeout=10)

    assert response.status_code < 500, response.text


@pytest.mark.parametrize("name", sorted(path.name for path in (FIXTURES / "control").glob("*.json")))
def test_every_payload_example_is_accepted(fresh, name):
    served, _ = fresh
    endpoint = {"fault": ("POST", "/faults", 201), "reset": ("POST", "/reset", 200),
                "clock-set": ("PUT", "/clock", 200), "clock-advance": ("POST", "/clock/advance", 200)}  # fmt: skip
    method, path, status = next(value for prefix, value in endpoint.items() if name.startswith(prefix))

    response = requests.request(
        method, f"{served.url}/_sandbox{path}", data=(FIXTURES / "control" / name).read_bytes(), timeout=10
    )

    assert response.status_code == status, response.text


def test_cli_loads_a_seed_file():
    with subprocess.Popen(
        [sys.executable, "-m", "mypreferences_sandbox", "--port", "0", "--seed-file", str(FIXTURES / "seed.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        url = process.stdout.readline().split()[-1]
        profile = send("GET", f"{url}/acme/Profile/1001")
        process.terminate()
        process.communicate(timeout=10)

    assert profile.json()["CustomerName"]["FirstName"] == "Ann"


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("PUT", "/clock", {"time": "9999-12-31T23:59:59-10:00"}, "time"),
        ("PUT", "/clock", {"time": "0001-01-01T00:00:00+10:00"}, "time"),
        ("PUT", "/clock", {"time": "1969-12-31T23:59:59Z"}, "time"),
        ("POST", "/clock/advance", {"seconds": 1e20}, "seconds"),
        ("POST", "/reset", {"clientId": ""}, "clientId"),
        ("POST", "/reset", {"clientId": "acme", "seed": 1}, "seed"),
        ("POST", "/state", {"clients": {"": []}}, "clients"),
        ("POST", "/state", {"clients": {"_sandbox": []}}, "clients"),
        ("POST", "/state", {"clients": {"a/b": []}}, "clients"),
        ("POST", "/faults", "[" * 100_000, "body"),
    ],
)  # fmt: skip
def test_edge_payloads_are_400_not_500(fresh, method, path, body, key):
    served, control = fresh
    data = body if isinstance(body, str) else json.dumps(body)

    response = requests.request(method, f"{served.url}/_sandbox{path}", data=data, timeout=10)

    assert response.status_code == 400, response.text
    assert any(name == key or name.startswith(f"{key}.") for name in response.json()["ModelState"])
    assert control.clock()["frozen"] is False  # nothing changed


def test_the_clock_near_the_end_of_its_range_keeps_every_feature_working(fresh):
    served, control = fresh
    control.set_clock("8999-12-31T00:00:00Z")

    rule = control.add_fault(match={"clientId": "x"}, respond={"status": 503}, ttl=10 * 365 * 86_400_000)
    token = requests.post(
        f"{served.url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "a/b", "client_id": "x", "client_secret": "y"},
        timeout=10,
    )
    advanced = requests.post(
        f"{served.url}/_sandbox/clock/advance", json={"seconds": 10 * 365 * 86_400}, timeout=10
    )

    assert (rule["state"], token.status_code, advanced.status_code) == ("active", 200, 400)
    assert control.faults()[0]["id"] == rule["id"]


def test_an_imported_partial_edited_is_completed(fresh):
    served, control = fresh
    control.import_state(
        {"clients": {"ed": [{"ProfileId": 5, "Edited": {"CreateDate": "2020-01-01T00:00:00.000Z"}}]}}
    )

    response = send("PUT", f"{served.url}/ed/Profile/5", {})

    assert response.status_code == 200
    assert response.json()["Edited"]["CreateDate"] == "2020-01-01T00:00:00.000Z"
    assert response.json()["Edited"]["CreatedBy"] == "sandbox"


def test_a_full_reset_revokes_bearer_tokens(fresh):
    served, control = fresh
    form = {"grant_type": "client_credentials", "scope": "acme/ann", "client_id": "x", "client_secret": "y"}
    token = requests.post(f"{served.url}/oauth/token", data=form, timeout=10).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}

    before = requests.post(f"{served.url}/acme/Profile", json={}, headers=bearer, timeout=10).json()[
        "Edited"
    ]["CreatedBy"]
    control.reset()
    after = requests.post(f"{served.url}/acme/Profile", json={}, headers=bearer, timeout=10).json()["Edited"][
        "CreatedBy"
    ]

    assert (before, after) == ("ann", "sandbox")  # lenient mode: an unknown token is still well-formed


LONE = '"\\ud800"'  # a lone surrogate, as a JSON escape


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("POST", "/faults", '{"respond": {"status": 503, "body": ' + LONE + "}}"),
        ("POST", "/faults", '{"match": {"path": ' + LONE + '}, "respond": {"status": 503}}'),
        ("PUT", "/accounts/acme", '{"AlternateIdTypes": [' + LONE + "]}"),
        ("POST", "/state", '{"accounts": {"acme": {"Tags": [' + LONE + "]}}}"),
        ("POST", "/state", '{"clients": {"acme": [{"CustomerName": {"FirstName": ' + LONE + "}}]}}"),
        ("POST", "/reset", '{"clientId": ' + LONE + "}"),
    ],
)
def test_a_lone_surrogate_is_400_and_leaves_nothing_behind(fresh, method, path, raw):
    served, control = fresh

    response = requests.request(
        method,
        f"{served.url}/_sandbox{path}",
        data=raw.encode(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == ["body"]
    assert control.faults() == []
    assert control.export_state() == {"clients": {}, "accounts": {}}
    assert requests.get(f"{served.url}/_sandbox/accounts", timeout=10).status_code == 200


def test_preferences_round_trip_and_an_import_starts_their_history_again(fresh):
    served, control = fresh
    frozen = datetime(2030, 1, 1, 9, tzinfo=UTC)
    control.set_clock(frozen)
    try:
        body = minimal_profile(ProfilePreferences=[{"FilterId": "news", "PreferenceType": 1}])
        created = post_json(f"{served.url}/acme/Profile", body, **auth(frozen)).json()
        exported = control.export_state()
        control.reset(client_id="acme")
        control.advance_clock(3600)
        control.import_state(exported)
        history = send(
            "GET",
            f"{served.url}/acme/Profile/{created['ProfileId']}/PreferenceHistory",
            **auth(frozen + timedelta(hours=1)),
        ).json()
    finally:
        control.release_clock()

    assert control.export_state() == exported
    assert (
        exported["clients"]["acme"][0]["ProfilePreferences"][0]["LastModifiedDate"]
        == "2030-01-01T09:00:00.000Z"
    )
    assert history == []


@pytest.mark.parametrize("seconds", [1e300, 10**30, (9000 - 1970) * 366 * 86_400 + 1])
def test_advancing_the_clock_beyond_its_range_is_a_clear_400(control, seconds):
    with pytest.raises(ControlError) as refused:
        control.advance_clock(seconds)

    assert refused.value.status == 400
    assert "int too large" not in str(refused.value.body)
    assert control.clock()["now"] < "9000"


def test_an_export_larger_than_the_body_limit_imports_back():
    with Served({"MAX_CONTENT_LENGTH": 4096, "MAX_IMPORT_BYTES": 1024 * 1024}) as served:
        control = ControlClient(served.url)
        for index in range(30):
            created = post_json(f"{served.url}/acme/Profile", minimal_profile(CustomerType=f"type {index}"))
            assert created.status_code == 201
        exported = requests.get(f"{served.url}/_sandbox/state", timeout=10)
        control.reset()
        imported = requests.post(
            f"{served.url}/_sandbox/state", data=exported.content, headers={"Content-Type": JSON}, timeout=10
        )
        chunked = requests.post(
            f"{served.url}/_sandbox/state",
            data=(exported.content[start : start + 1000] for start in range(0, len(exported.content), 1000)),
            headers={"Content-Type": JSON},
            timeout=10,
        )
        again = control.export_state()

    assert len(exported.content) > 4096
    assert exported.headers.get("Transfer-Encoding") == "chunked"  # streamed, not built whole
    assert (imported.status_code, chunked.status_code) == (200, 200)
    assert again == exported.json()


def test_a_state_document_over_its_own_limit_is_413_and_changes_nothing():
    with Served({"MAX_IMPORT_BYTES": 2048}) as served:
        document = {"clients": {"acme": [minimal_profile(CustomerType="x" * 3000)]}, "accounts": {}}
        declared = requests.post(f"{served.url}/_sandbox/state", json=document, timeout=10)
        chunked = requests.post(
            f"{served.url}/_sandbox/state",
            data=iter([json.dumps(document).encode()]),
            headers={"Content-Type": JSON},
            timeout=10,
        )
        state = ControlClient(served.url).export_state()

    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert declared.json() == {"Message": "The request body is larger than the limit of 2048 bytes."}
    assert state == {"clients": {}, "accounts": {}}


def test_an_imported_profile_id_beyond_a_long_is_400_and_changes_nothing():
    with Served() as served:
        response = requests.post(
            f"{served.url}/_sandbox/state", json={"clients": {"acme": [{"ProfileId": 2**63}]}}, timeout=10
        )
        state = ControlClient(served.url).export_state()

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == ["clients.acme[0].ProfileId"]
    assert state == {"clients": {}, "accounts": {}}


def test_a_fractional_seed_is_400_not_rounded(fresh):
    served, control = fresh
    control.add_fault(respond={"status": 500})

    fractional = send("POST", f"{served.url}/_sandbox/reset", {"seed": 1.5})
    as_text = send("POST", f"{served.url}/_sandbox/reset?seed=5")
    whole_float = send("POST", f"{served.url}/_sandbox/reset", {"seed": 5.0})

    assert fractional.status_code == 400
    assert fractional.json()["ModelState"] == {"seed": ["Not a valid integer."]}
    assert (as_text.status_code, whole_float.status_code) == (200, 200)


def test_the_limit_on_active_rules_is_documented_with_its_409(served):
    document = send("GET", f"{served.url}/_sandbox/openapi.json").json()

    answers = document["paths"]["/_sandbox/faults"]["post"]["responses"]

    assert "SANDBOX_MAX_FAULT_RULES" in answers["409"]["description"]


@pytest.mark.parametrize("client_id", ["ac\u0000me", "ac\nme", "x" * 261, "acme\n"])
def test_an_import_refuses_a_client_id_no_vendor_path_can_name(client_id):
    with Served() as served:
        response = requests.post(
            f"{served.url}/_sandbox/state", json={"clients": {client_id: []}}, timeout=10
        )
        state = ControlClient(served.url).export_state()

    assert response.status_code == 400
    assert state == {"clients": {}, "accounts": {}}


def test_once_the_profile_id_sequence_is_spent_a_create_is_409_and_the_export_still_imports():
    last = 2**63 - 1
    with Served() as served:
        control = ControlClient(served.url)
        control.import_state({"clients": {"acme": [{"ProfileId": last}]}})
        refused = post_json(f"{served.url}/acme/Profile", minimal_profile())
        exported = control.export_state()
        control.reset()
        control.import_state(exported)
        again = control.export_state()

    assert refused.status_code == 409
    assert refused.json()["Message"].startswith("No ProfileId is left")
    assert [p["ProfileId"] for p in exported["clients"]["acme"]] == [last]
    assert again == exported
