"""Activate, deactivate and delete over real HTTP, and what each does to lookups and searches."""

from __future__ import annotations

import pytest
from helpers import find, minimal_profile, post_json, send, send_xml, vendor, xml_of

PAIR = {"AlternateIdType": "crm", "AlternateId": "C-1"}


@pytest.fixture
def created(profile_url) -> dict:
    return post_json(profile_url, minimal_profile(AlternateIds=[PAIR])).json()


def lookups(profile_url: str) -> list[int]:
    """The statuses of every way to find the profile holding PAIR, or ann@example.com."""
    return [
        send("GET", f"{profile_url}/AlternateIdType/crm/AlternateId/C-1").status_code,
        send("GET", f"{profile_url}?alternateIdType=crm&alternateId=C-1").status_code,
        len(send("GET", f"{profile_url}?emailAddress=ann@example.com").json()),
        len(send("GET", f"{profile_url}?lastName=Example").json()),
    ]


def test_deactivate_with_a_reason_then_activate(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"

    deactivated = send("POST", f"{url}/Deactivate", {"Reason": "asked to leave"})
    fetched = send("GET", url)
    activated = send("POST", f"{url}/Activate")

    assert deactivated.status_code == 200
    assert (deactivated.json()["IsActive"], deactivated.json()["ReasonCode"]) == (False, "asked to leave")
    assert fetched.json() == deactivated.json()
    assert activated.status_code == 200
    assert activated.json()["IsActive"] is True
    assert "ReasonCode" not in activated.json()
    assert activated.json()["Edited"]["ModifiedDate"] >= deactivated.json()["Edited"]["ModifiedDate"]


def test_deactivate_without_a_body(profile_url, created):
    response = send("POST", f"{profile_url}/{created['ProfileId']}/Deactivate")

    assert response.status_code == 200
    assert response.json()["IsActive"] is False
    assert "ReasonCode" not in response.json()


def test_deactivate_in_xml(profile_url, created):
    response = send_xml(
        "POST", f"{profile_url}/{created['ProfileId']}/Deactivate", "ReasonCode", "<Reason>moved</Reason>"
    )

    document = xml_of(response)
    assert response.status_code == 200
    assert find(document, "IsActive").text == "false"
    assert find(document, "ReasonCode").text == "moved"


PREFERENCE = {"FilterId": "news", "PreferenceType": 1}


def with_preferences(profile_url: str, preserve: bool) -> str:
    """The URL of a new profile holding a preference of its own and one of its email."""
    email = {"EmailAddress": "ann@example.com", "EmailPreferences": [PREFERENCE]}
    body = minimal_profile(PreservePreferences=preserve, ProfilePreferences=[PREFERENCE], Emails=[email])
    return f"{profile_url}/{post_json(profile_url, body).json()['ProfileId']}"


def history_of(url: str) -> list[tuple[str, str, str | None]]:
    entries = send("GET", f"{url}/PreferenceHistory").json()
    return [(entry["FilterId"], entry["PreferenceStatus"], entry["ReasonCode"]) for entry in entries]


def test_deactivating_a_profile_that_does_not_preserve_preferences_archives_them(profile_url):
    url = with_preferences(profile_url, preserve=False)

    deactivated = send("POST", f"{url}/Deactivate", {"Reason": "moved"}).json()
    activated = send("POST", f"{url}/Activate").json()

    assert "ProfilePreferences" not in deactivated and "EmailPreferences" not in deactivated["Emails"][0]
    # Not restored: the profile did not preserve them.
    assert "ProfilePreferences" not in activated and "EmailPreferences" not in activated["Emails"][0]
    assert history_of(url)[-2:] == [("news", "Archived", "moved")] * 2


def test_deactivating_a_profile_that_preserves_preferences_keeps_them(profile_url):
    url = with_preferences(profile_url, preserve=True)

    deactivated = send("POST", f"{url}/Deactivate").json()
    activated = send("POST", f"{url}/Activate").json()

    for answer in (deactivated, activated):
        assert [p["FilterId"] for p in answer["ProfilePreferences"]] == ["news"]
        assert [p["FilterId"] for p in answer["Emails"][0]["EmailPreferences"]] == ["news"]
    assert {status for _, status, _ in history_of(url)} == {"Active"}


@pytest.mark.parametrize("preserve", [True, False])
def test_deactivating_in_xml_archives_the_preferences_a_profile_does_not_preserve(profile_url, preserve):
    url = with_preferences(profile_url, preserve=preserve)

    answer = send_xml(
        "POST", f"{url}/Deactivate", "ReasonCode", "<Reason>moved</Reason>", Accept="application/xml"
    )

    kept = find(xml_of(answer), "ProfilePreferences/ProfilePreference/FilterId")
    assert answer.status_code == 200
    assert (kept.text if kept is not None else None) == ("news" if preserve else None)
    assert (history_of(url)[-1][1:] == ("Archived", "moved")) is not preserve


def test_reason_longer_than_256_is_400_and_changes_nothing(profile_url, created, served, client_id):
    response = send("POST", f"{profile_url}/{created['ProfileId']}/Deactivate", {"Reason": "r" * 257})

    assert response.status_code == 400
    assert response.json()["ModelState"] == {
        "Reason": ["The field Reason must be a string with a maximum length of 256."]
    }
    assert served.profiles(client_id)[0]["IsActive"] is True


def test_deactivated_profile_is_found_by_its_id_only_until_reactivated(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"
    before = lookups(profile_url)

    send("POST", f"{url}/Deactivate")
    during = lookups(profile_url)
    by_id = send("GET", url).status_code
    send("POST", f"{url}/Activate")
    after = lookups(profile_url)

    assert before == after == [200, 200, 1, 1]
    assert during == [404, 404, 0, 0]
    assert by_id == 200


def test_deactivated_profile_still_holds_its_alternate_ids(profile_url, created):
    send("POST", f"{profile_url}/{created['ProfileId']}/Deactivate")

    create = post_json(profile_url, minimal_profile(AlternateIds=[PAIR]))
    upsert = send("POST", f"{profile_url}?alternateIdType=crm&alternateId=C-1", minimal_profile())

    assert (create.status_code, upsert.status_code) == (409, 409)


def test_delete_is_204_then_every_lookup_is_404_and_the_alternate_id_is_free(
    profile_url, created, served, client_id
):
    url = f"{profile_url}/{created['ProfileId']}"

    deleted = send("DELETE", f"{url}?reasonCode=duplicate")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert send("GET", url).status_code == 404
    assert lookups(profile_url) == [404, 404, 0, 0]
    assert served.profiles(client_id) == []
    recreated = post_json(profile_url, minimal_profile(AlternateIds=[PAIR]))
    assert recreated.status_code == 201
    assert recreated.json()["ProfileId"] > created["ProfileId"]


def test_delete_twice_is_404(profile_url, created):
    url = f"{profile_url}/{created['ProfileId']}"
    send("DELETE", url)

    assert send("DELETE", url).status_code == 404


def test_delete_takes_a_reason_of_any_length_as_the_vendor_documents_no_maximum(
    profile_url, created, served, client_id
):
    response = send("DELETE", f"{profile_url}/{created['ProfileId']}?reasonCode={'r' * 2000}")

    assert (response.status_code, response.raw.version, response.reason) == (204, 11, "No Content")
    assert "Content-Type" not in response.headers
    assert served.profiles(client_id) == []


@pytest.mark.parametrize("action", ["Activate", "Deactivate"])
def test_unknown_profile_is_404(profile_url, action):
    assert send("POST", f"{profile_url}/99999999/{action}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/1/Activate"),
        ("DELETE", ""),
        ("PUT", "/1/Deactivate"),
        ("POST", "/AlternateIdType/a/AlternateId/b"),
    ],
)
def test_wrong_method_on_a_known_path_is_405(profile_url, method, path):
    response = send(method, f"{profile_url}{path}", Accept="application/xml")

    assert response.status_code == 405
    assert (
        xml_of(response).findtext("Message")
        == f"The requested resource does not support http method '{method}'."
    )


@pytest.mark.parametrize("prefix", ["", "/Profiles"])
@pytest.mark.parametrize(
    ("method", "path", "body", "root"),
    [
        ("GET", "/Profile/{id}", None, "UserProfile"),
        ("GET", "/Profile/AlternateIdType/crm/AlternateId/C-1", None, "UserProfile"),
        ("GET", "/Profile?alternateIdType=crm&alternateId=C-1", None, "UserProfile"),
        ("GET", "/Profile?lastName=Example", None, "ArrayOfUserProfile"),
        ("PUT", "/Profile/{id}", minimal_profile(AlternateIds=[PAIR]), "UserProfile"),
        ("POST", "/Profile/{id}", {}, "UserProfile"),
        ("PATCH", "/Profile/{id}", [], "UserProfile"),
        ("POST", "/Profile/{id}/Deactivate", None, "UserProfile"),
        ("POST", "/Profile/{id}/Activate", None, "UserProfile"),
        ("POST", "/Consents/{id}", {"Consents": [{"ConsentType": "t", "ConsentVersion": "1", "Locale": "en", "ConsentStatus": 4}]},
         "UserProfile"),
        ("GET", "/ConsentStatus", None, "ConsentStatusList"),
        ("GET", "/Profile/99999999", None, "Error"),
    ],
)  # fmt: skip
def test_every_endpoint_answers_in_xml_under_both_prefixes(
    base_url, client_id, created, prefix, method, path, body, root
):
    url = f"{base_url}{prefix}/{client_id}{path.format(id=created['ProfileId'])}"
    content_type = {"Content-Type": "application/json-patch+json"} if method == "PATCH" else {}

    response = send(method, url, body, Accept="application/xml", **content_type)

    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert xml_of(response).tag.rpartition("}")[2] == root


def test_deactivate_with_an_empty_chunked_body(profile_url, created):
    def empty():
        yield b""

    response = vendor.post(f"{profile_url}/{created['ProfileId']}/Deactivate", data=empty(), timeout=10)

    assert response.status_code == 200
    assert response.json()["IsActive"] is False
