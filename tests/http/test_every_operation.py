"""Every vendor operation answers, in JSON and in XML, under both roots: one table, checked against
the operations the views declare, so that a new operation without a row here fails."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from helpers import JSON, XML, auth, minimal_profile, post_json
from mypreferences_sandbox.contract.operations import operation_name, operation_names

PAIR = {"AlternateIdType": "crm", "AlternateId": "C-1"}
PROFILE = minimal_profile(
    AlternateIds=[PAIR],
    Addresses=[{"Address1": "1 Main St", "City": "Atlanta", "StateProvince": "GA", "PostalCode": "30301"}],
    Groups=[{"GroupType": "household", "GroupName": "Example", "IsPrimary": True}],
    ProfilePreferences=[
        {"FilterId": "news", "PreferenceType": 1, "PreferenceAttributes": [{"Key": "source"}]}
    ],
)
BY_PAIR = "alternateIdType=crm&alternateId=C-1"
CONSENT = {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 1}

# operation: (method, path under /{clientId} ({id}: the profile's), JSON body or None, status)
OPERATIONS = {
    "create_profile": ("POST", "/Profile", minimal_profile(), 201),
    "find_profiles": ("GET", "/Profile?emailAddress=ann@example.com", None, 200),
    "replace_by_alternate_id": ("PUT", f"/Profile?{BY_PAIR}", PROFILE, 200),
    "patch_by_alternate_id_query": ("PATCH", f"/Profile?{BY_PAIR}", [], 200),
    "get_by_alternate_id": ("GET", "/Profile/AlternateIdType/crm/AlternateId/C-1", None, 200),
    "patch_by_alternate_id": ("PATCH", "/Profile/AlternateIdType/crm/AlternateId/C-1", [], 200),
    "get_profile": ("GET", "/Profile/{id}", None, 200),
    "replace_profile": ("PUT", "/Profile/{id}", PROFILE, 200),
    "merge_profile": ("POST", "/Profile/{id}", {}, 200),
    "patch_profile": ("PATCH", "/Profile/{id}", [], 200),
    "delete_profile": ("DELETE", "/Profile/{id}", None, 204),
    "activate_profile": ("POST", "/Profile/{id}/Activate", None, 200),
    "deactivate_profile": ("POST", "/Profile/{id}/Deactivate", None, 200),
    "add_consents": ("POST", "/Consents/{id}", {"Consents": [CONSENT]}, 200),
    "consent_statuses": ("GET", "/ConsentStatus", None, 200),
    "find_profiles_by_address": ("GET", "/Profile/Address?city=Atlanta&stateProvince=GA", None, 200),
    "find_group_profiles": ("GET", "/Profile/Group?emailAddress=ann@example.com&groupType=household", None, 200),
    "find_group_profiles_by_id": ("GET", "/Profile/Group/{id}?groupType=household", None, 200),
    "upsert_preferences": ("POST", "/Profile/Preferences/AlternateIdType/crm/AlternateId/C-1",
                           {"ProfilePreferences": [{"FilterId": "promo", "PreferenceType": 2}]}, 200),
    "archive_preferences": ("PUT", "/Profile/Preferences/{id}/Archive", {"GlobalDeactivate": True}, 204),
    "alternate_id_types": ("GET", "/AlternateIdTypes", None, 200),
    "address_types": ("GET", "/AddressTypes", None, 200),
    "create_consent_types": ("POST", "/ConsentTypes", {"ConsentTypes": [{"Name": "sms"}]}, 201),
    "consent_history": ("GET", "/Profile/{id}/ConsentHistory", None, 200),
    "consent_history_by_alternate_id": ("GET", f"/Profile/ConsentHistory?{BY_PAIR}", None, 200),
    "preference_history": ("GET", "/Profile/{id}/PreferenceHistory", None, 200),
    "preference_history_by_alternate_id": ("GET", f"/Profile/PreferenceHistory?{BY_PAIR}", None, 200),
    "consent_filters": ("GET", "/Consents/{id}/Filters", None, 200),
}  # fmt: skip


def test_the_table_names_every_vendor_operation(served):
    assert set(OPERATIONS) == operation_names(served.app.view_functions, "vendor")


@pytest.mark.parametrize("accept", [JSON, XML])
@pytest.mark.parametrize("prefix", ["", "/Profiles"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_answers_in_the_negotiated_format_under_both_roots(
    served, client_id, control, operation, prefix, accept
):
    created = post_json(f"{served.url}/{client_id}/Profile", PROFILE).json()
    method, path, body, status = OPERATIONS[operation]
    url = f"{served.url}{prefix}/{client_id}{path.format(id=created['ProfileId'])}"
    adapter = served.app.url_map.bind("localhost")
    endpoint, _ = adapter.match(urlsplit(url).path, method=method)
    headers = {**auth(), "Accept": accept} | ({"Content-Type": JSON} if body is not None else {})

    response = requests.request(method, url, json=body, headers=headers, timeout=10)

    assert operation_name(endpoint) == operation
    assert response.status_code == status, response.text
    if status == 204:
        assert (response.content, response.headers.get("Content-Type")) == (b"", None)
    else:
        assert response.headers["Content-Type"] == f"{accept}; charset=utf-8"
        assert response.content.startswith(b"<") == (accept == XML)
