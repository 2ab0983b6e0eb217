"""Updates over real HTTP: PUT overwrites, POST merges, PATCH applies JSON Patch; by id and by AlternateId."""

from __future__ import annotations

import threading

import pytest
from helpers import (
    XML,
    find,
    minimal_profile,
    patch,
    post_json,
    send,
    send_bytes,
    send_xml,
    warnings_of,
    xml_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ORIGINAL = minimal_profile(
    CustomerType="Prospect",
    RegistrationConfirmed=True,
    AlternateIds=[{"AlternateIdType": "crm", "AlternateId": "C-1"}],
    PhoneNumbers=[{"PhoneNumber": "404-555-0100", "PhoneType": "home"}],
    Emails=[{"EmailAddress": "ann@example.com", "EmailAddressType": "home", "IsDefault": True}],
)


@pytest.fixture
def created(profile_url) -> dict:
    response = post_json(profile_url, ORIGINAL)
    assert response.status_code == 201
    return response.json()


def test_put_post_and_patch_side_by_side(profile_url):
    """The same change, three ways: only PUT blanks what the body omits."""
    results = {}
    for method in ("PUT", "POST", "PATCH"):
        alternate_ids = [{"AlternateIdType": "crm", "AlternateId": method}]
        profile_id = post_json(profile_url, ORIGINAL | {"AlternateIds": alternate_ids}).json()["ProfileId"]
        url = f"{profile_url}/{profile_id}"
        if method == "PATCH":
            response = patch(url, [{"op": "replace", "path": "/CustomerName/FirstName", "value": "Anna"}])
        else:
            response = send(
                method, url, {"CustomerName": {"FirstName": "Anna"}, "AlternateIds": alternate_ids}
            )
        assert response.status_code == 200, response.text
        results[method] = response.json()

    put, post, patched = results["PUT"], results["POST"], results["PATCH"]
    assert put["CustomerName"] == {
        "FirstName": "Anna",
        "MiddleName": None,
        "LastName": None,
        "Prefix": None,
        "Suffix": None,
    }
    assert (put["PhoneNumbers"], put["Emails"], put["CustomerType"], put["RegistrationConfirmed"]) == (
        [],
        [],
        "Customer",
        False,
    )
    for kept in (post, patched):
        assert kept["CustomerName"]["FirstName"] == "Anna"
        assert kept["CustomerName"]["LastName"] == "Example"
        assert kept["PhoneNumbers"][0]["PhoneNumber"] == "404-555-0100"
        assert (kept["CustomerType"], kept["RegistrationConfirmed"]) == ("Prospect", True)


def test_writes_change_modified_but_never_created(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"

    edits = [send("PUT", url, ORIGINAL), send("POST", url, {}), patch(url, [])]

    for response in edits:
        edited = response.json()["Edited"]
        assert (edited["CreateDate"], edited["CreatedBy"]) == (created["Edited"]["CreateDate"], "tester")
        assert edited["ModifiedDate"] >= created["Edited"]["ModifiedDate"]
    assert edits[-1].json()["Edited"]["ModifiedDate"] > created["Edited"]["ModifiedDate"]


def test_post_merges_entries_by_their_key(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"

    merged = send(
        "POST",
        url,
        {
            "Emails": [
                {"EmailAddress": "ANN@example.com", "EmailAddressType": "work"},
                {"EmailAddress": "b@example.com"},
            ],
            "CustomerName": {"MiddleName": "Q"},
        },
    ).json()

    assert [(e["EmailAddress"], e["EmailAddressType"], e["IsDefault"]) for e in merged["Emails"]] == [
        ("ANN@example.com", "work", True),
        ("b@example.com", None, False),
    ]
    assert merged["CustomerName"] == {
        "FirstName": "Ann",
        "MiddleName": "Q",
        "LastName": "Example",
        "Prefix": None,
        "Suffix": None,
    }
    assert merged["AlternateIds"] == ORIGINAL["AlternateIds"]


def test_merge_that_leaves_two_defaults_is_400_and_changes_nothing(profile_url, created, served, client_id):
    before = served.profiles(client_id)
    url = f"{profile_url}/{created['ProfileId']}"

    response = send("POST", url, {"Emails": [{"EmailAddress": "b@example.com", "IsDefault": True}]})

    assert response.status_code == 400
    assert response.json()["ModelState"] == {
        "Emails": ["Only one email can be the default; 2 have IsDefault true."]
    }
    assert served.profiles(client_id) == before


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_invalid_update_is_400_and_changes_nothing(profile_url, created, served, client_id, method):
    before = served.profiles(client_id)
    response = send(
        method, f"{profile_url}/{created['ProfileId']}", {"CustomerType": "x" * 101, "Emails": [{}]}
    )

    assert response.status_code == 400
    assert set(response.json()["ModelState"]) == {"CustomerType", "Emails[0].EmailAddress"}
    assert served.profiles(client_id) == before


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH"])
def test_update_taking_another_profiles_alternate_id_is_409_and_changes_nothing(
    profile_url, created, served, client_id, method
):
    other = post_json(
        profile_url, minimal_profile(AlternateIds=[{"AlternateIdType": "crm", "AlternateId": "C-2"}])
    ).json()
    taken = [{"AlternateIdType": "CRM", "AlternateId": "c-1"}]
    url = f"{profile_url}/{other['ProfileId']}"

    if method == "PATCH":
        response = patch(url, [{"op": "add", "path": "/AlternateIds/-", "value": taken[0]}])
    else:
        response = send(method, url, minimal_profile(AlternateIds=taken))

    assert response.status_code == 409
    assert response.json() == {
        "Message": "A profile with AlternateIdType 'CRM' and AlternateId 'c-1' already exists."
    }
    assert [p["AlternateIds"] for p in served.profiles(client_id)] == [
        ORIGINAL["AlternateIds"],
        other["AlternateIds"],
    ]


def test_update_may_keep_its_own_alternate_ids(profile_url, created):
    response = send("PUT", f"{profile_url}/{created['ProfileId']}", ORIGINAL)

    assert response.status_code == 200


def test_alternate_id_given_up_by_an_update_is_free_at_once(profile_url, created):
    send("PUT", f"{profile_url}/{created['ProfileId']}", minimal_profile())

    assert post_json(profile_url, ORIGINAL).status_code == 201


def test_patch_operations(profile_url, created, served, client_id):
    url = f"{profile_url}/{created['ProfileId']}"

    response = patch(
        url,
        {
            "Operations": [
                {"op": "test", "path": "/CustomerName/LastName", "value": "Example"},
                {"op": "add", "path": "/Emails/-", "value": {"EmailAddress": "b@example.com"}},
                {"op": "remove", "path": "/PhoneNumbers/0"},
                {"op": "replace", "path": "/IsActive", "value": False},
            ]
        },
    )

    profile = response.json()
    assert response.status_code == 200, response.text
    assert [e["EmailAddress"] for e in profile["Emails"]] == ["ann@example.com", "b@example.com"]
    assert profile["PhoneNumbers"] == []
    assert profile["IsActive"] is False
    assert served.profiles(client_id)[0]["Emails"][1]["IsActive"] is True


@pytest.mark.parametrize(
    ("operations", "path", "message"),
    [
        ([{"op": "move", "from": "/CustomerType", "path": "/DefaultLocale"}], "Operations[0].op",
         "The operation 'move' is not supported; use add, replace, remove or test."),
        ([{"op": "copy", "from": "/CustomerType", "path": "/DefaultLocale"}], "Operations[0].op",
         "The operation 'copy' is not supported; use add, replace, remove or test."),
        ([{"op": "replace", "path": "/CustomerType", "value": "VIP"}, {"op": "test", "path": "/CustomerType", "value": "Prospect"}],
         "Operations[1]", "The test at '/CustomerType' failed."),
        ([{"op": "remove", "path": "/Emails/5"}], "Operations[0]", None),
        ([{"op": "remove", "path": "/CustomerType/0"}], "Operations[0]", None),
        ([{"op": "add", "path": "/CustomerName/FirstName/x", "value": 1}], "Operations[0]", None),
        ([{"op": "replace", "path": "/CustomerType", "value": "x" * 101}], "CustomerType",
         "The field CustomerType must be a string with a maximum length of 100."),
        ([{"op": "add", "path": "/Emails/-", "value": {"EmailAddress": "b@example.com", "IsDefault": True}}], "Emails",
         "Only one email can be the default; 2 have IsDefault true."),
        ({"op": "add"}, "Operations", "The Operations field is required."),
        ({"Operations": {"op": "add"}}, "Operations", "Expected a collection: a JSON array, or XML entry elements."),
        ([{"path": "/CustomerType"}], "Operations[0].op", "Missing data for required field."),
    ],
    ids=["move", "copy", "failed-test", "bad-pointer", "into-a-string", "below-a-string", "invalid-result", "two-defaults", "no-operations",
         "operations-not-a-list", "no-op"],
)  # fmt: skip
def test_rejected_patch_changes_nothing(profile_url, created, served, client_id, operations, path, message):
    before = served.profiles(client_id)
    response = patch(f"{profile_url}/{created['ProfileId']}", operations)

    assert response.status_code == 400
    model_state = response.json()["ModelState"]
    assert list(model_state) == [path]
    if message:
        assert model_state[path] == [message]
    assert served.profiles(client_id) == before


JSON_PATCH = "http://schemas.datacontract.org/2004/07/Microsoft.AspNetCore.JsonPatch"


def test_the_documented_xml_patch_is_read_as_the_vendor_reads_it_as_no_operation(
    profile_url, created, served, client_id
):
    sample = (
        f'<JsonPatchDocumentOfUserProfile5B0F46o8 xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns="{JSON_PATCH}"><ContractResolver i:nil="true" /><Operations>replace</Operations>'
        f"</JsonPatchDocumentOfUserProfile5B0F46o8>"
    )
    before = served.profiles(client_id)[0]

    response = send_bytes("PATCH", f"{profile_url}/{created['ProfileId']}", sample.encode(), XML)
    wrong_root = send_xml("PATCH", f"{profile_url}/{created['ProfileId']}", "JsonPatchDocument", "")

    assert response.status_code == 200, response.text
    assert warnings_of(response) == [
        "ignored unknown field 'Operations'",
        "an XML JSON Patch document carries no operations (DataContractSerializer reads only its "
        "ContractResolver): nothing was patched",
    ]
    after = served.profiles(client_id)[0]
    assert {**after, "Edited": before["Edited"]} == before
    assert wrong_root.status_code == 400


def test_put_and_post_in_xml(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"

    put = send_xml("PUT", url, "CreateUserProfile", "<CustomerType>Member</CustomerType>")
    post = send_xml(
        "POST", url, "CreateUserProfile", "<CustomerName><FirstName>Zed</FirstName></CustomerName>"
    )

    assert (put.status_code, post.status_code) == (200, 200)
    assert find(xml_of(put), "CustomerType").text == "Member"
    assert find(xml_of(post), "CustomerName/FirstName").text == "Zed"
    assert find(xml_of(post), "CustomerType").text == "Member"


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH"])
def test_unknown_profile_is_404(profile_url, method):
    body = [] if method == "PATCH" else minimal_profile()
    response = (
        patch(f"{profile_url}/99999999", body)
        if method == "PATCH"
        else send(method, f"{profile_url}/99999999", body)
    )

    assert response.status_code == 404


# --- by AlternateId ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["path", "query"])
def test_patch_by_alternate_id(profile_url, created, route):
    url = (
        f"{profile_url}/AlternateIdType/CRM/AlternateId/c-1"
        if route == "path"
        else f"{profile_url}?alternateIdType=CRM&alternateId=c-1"
    )

    response = patch(url, [{"op": "replace", "path": "/CustomerType", "value": "VIP"}])

    assert response.status_code == 200
    assert response.json()["ProfileId"] == created["ProfileId"]
    assert response.json()["CustomerType"] == "VIP"


def test_put_by_alternate_id_blanks_what_it_omits_the_id_it_was_found_by_too(profile_url, created):
    response = send("PUT", f"{profile_url}?alternateIdType=crm&alternateId=C-1", {"CustomerType": "Member"})

    profile = response.json()
    assert response.status_code == 200
    assert profile["ProfileId"] == created["ProfileId"]
    assert (profile["CustomerType"], profile["Emails"], profile["AlternateIds"]) == ("Member", [], [])
    assert send("GET", f"{profile_url}?alternateIdType=crm&alternateId=C-1").status_code == 404


def test_patch_paths_follow_the_user_profile_that_is_answered(profile_url, served, client_id):
    body = minimal_profile(Groups=[{"GroupName": "family", "GroupType": "household"}])
    created = post_json(profile_url, body).json()

    response = patch(
        f"{profile_url}/{created['ProfileId']}",
        [
            {"op": "test", "path": "/ProfileId", "value": created["ProfileId"]},
            {"op": "replace", "path": "/Groups/0/GroupId", "value": "friends"},
        ],
    )

    assert response.status_code == 200, response.text
    assert response.json()["Groups"][0]["GroupId"] == "friends"
    assert served.profiles(client_id)[0]["Groups"][0]["GroupName"] == "friends"


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "replace", "path": "/ProfileId", "value": 7}, "The member at '/ProfileId' is read-only."),
        ({"op": "remove", "path": "/Edited"}, "The member at '/Edited' is read-only."),
        ({"op": "add", "path": "/Consents/-", "value": {}}, "The member at '/Consents/-' is read-only."),
        ({"op": "replace", "path": "/Emails/0/IsActive", "value": False}, "The member at '/Emails/0/IsActive' is read-only."),
        ({"op": "replace", "path": "/Addresses/0/Country", "value": "X"}, "The member at '/Addresses/0/Country' is read-only."),
        ({"op": "add", "path": "/Nickname", "value": "Al"}, "The target location specified by path segment 'Nickname' was not found."),
        ({"op": "replace", "path": "/CustomerName", "value": "Al"}, None),
    ],
    ids=["profile-id", "edited", "consents", "entry-is-active", "country", "unknown-member", "object-as-string"],
)  # fmt: skip
def test_a_patch_of_what_a_create_cannot_carry_is_400_and_changes_nothing(
    profile_url, served, client_id, operation, message
):
    address = {"Address1": "1 Main St", "City": "Atlanta", "StateProvince": "GA", "PostalCode": "30301"}
    created = post_json(profile_url, minimal_profile(Addresses=[address])).json()
    before = served.profiles(client_id)

    response = patch(f"{profile_url}/{created['ProfileId']}", [operation])

    assert response.status_code == 400, response.text
    if message:
        assert response.json()["ModelState"] == {"Operations[0]": [message]}
    assert served.profiles(client_id) == before


def test_post_by_alternate_id_is_an_upsert(profile_url, served, client_id):
    url = f"{profile_url}?alternateIdType=web&alternateId=W-1"

    first = send("POST", url, minimal_profile(CustomerType="Prospect"))
    second = send("POST", url, {"CustomerType": "Customer"})

    assert first.status_code == 201
    assert first.headers["Location"] == f"{profile_url}/{first.json()['ProfileId']}"
    assert first.json()["AlternateIds"] == [{"AlternateIdType": "web", "AlternateId": "W-1"}]
    assert second.status_code == 200
    assert second.json()["ProfileId"] == first.json()["ProfileId"]
    assert (second.json()["CustomerType"], second.json()["CustomerName"]["FirstName"]) == ("Customer", "Ann")
    assert len(served.profiles(client_id)) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
def test_alternate_id_nobody_holds_is_404(profile_url, method):
    body = [] if method == "PATCH" else (None if method == "GET" else minimal_profile())
    url = f"{profile_url}?alternateIdType=crm&alternateId=nobody"
    response = patch(url, body) if method == "PATCH" else send(method, url, body)

    assert response.status_code == 404
    assert response.json() == {
        "Message": "No active profile has AlternateIdType 'crm' and AlternateId 'nobody'."
    }


def test_half_an_alternate_id_query_is_400(profile_url):
    response = send("GET", f"{profile_url}?alternateIdType=crm", Accept=XML)

    assert response.status_code == 400
    assert (
        xml_of(response).findtext("ModelState/alternateId")
        == "The alternateId query parameter is required with the other."
    )


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_updates_of_one_profile_leave_one_serial_outcome(profile_url, created, served, client_id):
    """8 threads each PUT their own whole profile 25 times: the result is exactly one of them."""
    url = f"{profile_url}/{created['ProfileId']}"
    bodies = [
        minimal_profile(
            CustomerType=f"type-{n}",
            Emails=[{"EmailAddress": f"{n}@example.com"}],
            AlternateIds=[{"AlternateIdType": "crm", "AlternateId": f"C-{n}"}],
        )
        for n in range(8)
    ]
    statuses = []
    start = threading.Barrier(len(bodies))

    def writer(body: dict) -> None:
        start.wait()
        statuses.extend(send("PUT", url, body).status_code for _ in range(25))

    threads = [threading.Thread(target=writer, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [stored] = served.profiles(client_id)
    assert set(statuses) == {200}
    winner = int(stored["CustomerType"].split("-")[1])
    assert [e["EmailAddress"] for e in stored["Emails"]] == [f"{winner}@example.com"]
    assert stored["AlternateIds"] == bodies[winner]["AlternateIds"]
    for n in range(8):
        holder = send("GET", f"{profile_url}/AlternateIdType/crm/AlternateId/C-{n}")
        assert holder.status_code == (200 if n == winner else 404)


pointers = st.lists(
    st.sampled_from(
        ["CustomerName", "CustomerType", "FirstName", "Emails", "0", "-", "IsActive", "AlternateIds", "x", ""]
    ),
    max_size=3,
).map(lambda steps: "/" + "/".join(steps))
operations = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "test", "move", "bad"]), "path": pointers},
        optional={
            "value": st.none()
            | st.booleans()
            | st.text(max_size=5)
            | st.just({"EmailAddress": "a@b.c"})
            | st.just([])
        },
    ),
    max_size=4,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    patch_operations=operations,
    merge_body=st.dictionaries(
        st.sampled_from([*ORIGINAL, "IsActive"]), st.none() | st.booleans() | st.just([{}]), max_size=3
    ),
)
def test_no_update_gets_a_500(profile_url, created, patch_operations, merge_body):
    url = f"{profile_url}/{created['ProfileId']}"

    patched = patch(url, patch_operations)
    merged = send("POST", url, merge_body)

    assert patched.status_code in (200, 400), patched.text
    assert merged.status_code in (200, 400), merged.text


def test_a_patch_reaches_a_preference_collection_the_answer_leaves_out_when_empty(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"

    response = patch(
        url,
        [
            {
                "op": "add",
                "path": "/ProfilePreferences/-",
                "value": {"FilterId": "news", "PreferenceType": 1},
            },
            {
                "op": "replace",
                "path": "/Emails/0/EmailPreferences",
                "value": [{"FilterId": "promo", "PreferenceType": 2}],
            },
        ],
    )

    assert response.status_code == 200, response.text
    assert [p["FilterId"] for p in response.json()["ProfilePreferences"]] == ["news"]
    assert [p["FilterId"] for p in response.json()["Emails"][0]["EmailPreferences"]] == ["promo"]


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            {"op": "remove", "path": "/Emails/5"},
            "The target location specified by path segment '5' was not found.",
        ),
        ({"op": "replace", "path": "/CustomerName/Nickname", "value": "x"}, None),
        (
            {"op": "remove", "path": "/CustomerType/0"},
            "The target location specified by path segment '0' was not found.",
        ),
    ],
)
def test_a_patch_that_cannot_apply_says_so_in_aspnet_words_without_the_document(
    profile_url, created, operation, message
):
    response = patch(f"{profile_url}/{created['ProfileId']}", [operation])

    assert response.status_code == 400
    [said] = response.json()["ModelState"]["Operations[0]"]
    assert "{" not in said and "'ProfileId'" not in said
    if message:
        assert said == message
