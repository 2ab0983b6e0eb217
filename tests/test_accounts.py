"""Account configuration over real HTTP: open and closed kinds of types, the vendor's configuration
endpoints, the control plane's, resets and state documents."""

from __future__ import annotations

import pytest
from helpers import Served, find, minimal_profile, patch, post_json, send, send_xml, xml_of

from sandbox.control_client import ControlClient, ControlError

CONFIGURED = {
    "acme": {
        "AlternateIdTypes": [
            "CRM",
            {"Name": "Loyalty", "Description": "Card number", "Locales": {"fr-CA": {"Name": "Fidélité"}}},
        ],
        "ConsentTypes": ["email"],
    }
}
CONSENT = {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 1}


@pytest.fixture(scope="module")
def configured():
    with Served({"ACCOUNTS": CONFIGURED}) as served:
        yield served


@pytest.fixture
def acme(configured):
    """The configured server, with acme's profiles and run-time configuration forgotten afterwards."""
    yield configured
    ControlClient(configured.url).reset(client_id="acme")


def alternate_id(kind: str, ident: str = "1") -> list[dict]:
    return [{"AlternateIdType": kind, "AlternateId": ident}]


def types(url: str, query: str = "") -> list[dict]:
    response = send("GET", f"{url}/AlternateIdTypes?{query}")
    assert response.status_code == 200, response.text
    return response.json()["AlternateIdTypes"]


# --- an open account ----------------------------------------------------------------------------


def test_an_open_account_registers_the_types_it_meets_with_a_warning(base_url, client_id, control):
    url = f"{base_url}/{client_id}"

    first = post_json(f"{url}/Profile", minimal_profile(AlternateIds=alternate_id("CRM")))
    second = post_json(f"{url}/Profile", minimal_profile(AlternateIds=alternate_id("crm", "2")))

    assert first.status_code == second.status_code == 201
    assert f"registered AlternateIdType 'CRM' in the open account '{client_id}'" in first.raw.headers.getlist(
        "X-Sandbox-Warning"
    )
    assert not [w for w in second.raw.headers.getlist("X-Sandbox-Warning") if "AlternateIdType" in w]
    assert types(url) == [{"Id": 1, "Name": "CRM", "Description": None}]
    assert control.export_state(client_id)["accounts"] == {}  # met, not configured: still open
    assert control.accounts(client_id) == {"accounts": {}}


# --- a configured account ---------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/Profiles"])
def test_a_configured_kind_refuses_a_type_it_lacks_with_404_and_stores_nothing(acme, prefix):
    url = f"{acme.url}{prefix}/acme/Profile"

    refused = post_json(url, minimal_profile(AlternateIds=alternate_id("Web")))
    accepted = post_json(url, minimal_profile(AlternateIds=alternate_id("crm")))

    assert refused.status_code == 404
    assert refused.json() == {
        "Message": "The AlternateIdType 'Web' is not configured for 'acme' (AlternateIdTypes)."
    }
    assert accepted.status_code == 201
    assert not [w for w in accepted.raw.headers.getlist("X-Sandbox-Warning") if w.startswith("registered")]
    assert [p["AlternateIds"] for p in acme.profiles("acme")] == [alternate_id("crm")]


def test_every_write_checks_the_types_it_names(acme):
    url = f"{acme.url}/acme/Profile"
    created = post_json(url, minimal_profile()).json()
    by_id = f"{url}/{created['ProfileId']}"
    web = alternate_id("Web")

    answers = [
        send("PUT", by_id, minimal_profile(AlternateIds=web)).status_code,
        send("POST", by_id, {"AlternateIds": web}).status_code,
        patch(by_id, [{"op": "add", "path": "/AlternateIds/-", "value": web[0]}]).status_code,
        send("POST", f"{url}?alternateIdType=Web&alternateId=9", minimal_profile()).status_code,
        send(
            "POST",
            f"{acme.url}/acme/Consents/{created['ProfileId']}",
            {"Consents": [CONSENT | {"ConsentType": "sms"}]},
        ).status_code,
    ]

    assert answers == [404] * 5
    assert (
        acme.profiles("acme") == [acme.profiles("acme")[0]] and acme.profiles("acme")[0]["AlternateIds"] == []
    )


def test_an_account_lists_its_types_by_id_and_locale(acme):
    url = f"{acme.url}/acme"

    assert types(url) == [
        {"Id": 1, "Name": "CRM", "Description": None},
        {"Id": 2, "Name": "Loyalty", "Description": "Card number"},
    ]
    assert types(url, "Id=2") == [{"Id": 2, "Name": "Loyalty", "Description": "Card number"}]
    assert types(url, "locale=fr-ca") == [{"Id": 2, "Name": "Fidélité", "Description": "Card number"}]
    assert send("GET", f"{url}/AlternateIdTypes?locale=de-de").status_code == 404
    assert send("GET", f"{url}/AlternateIdTypes?Id=9").status_code == 404
    assert send("GET", f"{url}/AlternateIdTypes?Id=x").status_code == 400
    assert send("GET", f"{url}/AddressTypes").json() == {"AddressTypes": []}


def test_types_in_xml(acme):
    document = xml_of(send("GET", f"{acme.url}/Profiles/acme/AlternateIdTypes", Accept="application/xml"))

    assert document.tag.endswith("}AlternateIdTypeEntryList")
    entries = list(find(document, "AlternateIdTypes"))
    assert [find(entry, "Name").text for entry in entries] == ["CRM", "Loyalty"]
    assert {entry.tag.rpartition("}")[2] for entry in entries} == {"AlternateIdTypeEntry"}


# --- consent types --------------------------------------------------------------------------


def test_consent_types_created_by_the_vendor_operation_close_the_kind(base_url, client_id, control):
    url = f"{base_url}/{client_id}"
    profile_id = post_json(f"{url}/Profile", minimal_profile()).json()["ProfileId"]

    created = send(
        "POST", f"{url}/ConsentTypes", {"ConsentTypes": [{"Name": "email", "Description": "News"}]}
    )
    again = send("POST", f"{url}/ConsentTypes", {"ConsentTypes": [{"Name": "EMAIL"}]})
    known = send("POST", f"{url}/Consents/{profile_id}", {"Consents": [CONSENT]})
    unknown = send("POST", f"{url}/Consents/{profile_id}", {"Consents": [CONSENT | {"ConsentType": "sms"}]})

    assert (created.status_code, created.json()) == (
        201,
        {"ConsentTypes": [{"Id": 1, "Name": "email", "Description": "News"}]},
    )
    assert again.status_code == 409
    assert (known.status_code, unknown.status_code) == (200, 404)
    assert control.export_state(client_id)["accounts"] == {
        client_id: {"ConsentTypes": [{"Name": "email", "Description": "News", "Locales": {}}]}
    }


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({}, "ConsentTypes"),
        ({"ConsentTypes": []}, "ConsentTypes"),
        ({"ConsentTypes": [{"Name": ""}]}, "ConsentTypes[0].Name"),
    ],
)
def test_consent_types_need_names(base_url, client_id, body, key):
    response = send("POST", f"{base_url}/{client_id}/ConsentTypes", body)

    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == [key]


def test_consent_types_in_xml(base_url, client_id):
    inner = "<ConsentTypes><CreateConsentType><Description>Texts</Description><Name>sms</Name></CreateConsentType></ConsentTypes>"

    response = send_xml("POST", f"{base_url}/{client_id}/ConsentTypes", "CreateConsentTypeList", inner)

    assert response.status_code == 201, response.text
    assert [find(entry, "Name").text for entry in find(xml_of(response), "ConsentTypes")] == ["sms"]


# --- the control plane: configure, reset, state ----------------------------------------------


def test_the_control_plane_configures_an_account_and_a_reset_forgets_it(base_url, client_id, control):
    configured = control.configure_account(client_id, {"PhoneTypes": ["Mobile"]})
    refused = post_json(
        f"{base_url}/{client_id}/Profile",
        minimal_profile(PhoneNumbers=[{"PhoneNumber": "1", "PhoneType": "Home"}]),
    )
    control.reset(client_id=client_id)
    accepted = post_json(
        f"{base_url}/{client_id}/Profile",
        minimal_profile(PhoneNumbers=[{"PhoneNumber": "1", "PhoneType": "Home"}]),
    )

    assert configured == {
        "accounts": {client_id: {"PhoneTypes": [{"Name": "Mobile", "Description": None, "Locales": {}}]}}
    }
    assert (refused.status_code, accepted.status_code) == (404, 201)


def test_a_bad_account_document_is_400(control, client_id):
    with pytest.raises(ControlError) as refused:
        control.configure_account(client_id, {"Tags": "VIP"})

    assert refused.value.status == 400


def test_settings_come_back_after_a_reset_and_state_round_trips(acme):
    control = ControlClient(acme.url)
    control.configure_account("acme", {"AlternateIdTypes": ["Web"]})
    exported = control.export_state("acme")

    control.reset(client_id="acme")
    after_reset = control.export_state("acme")["accounts"]["acme"]["AlternateIdTypes"]
    control.import_state(exported)

    assert [t["Name"] for t in after_reset] == ["CRM", "Loyalty"]
    assert control.export_state("acme") == exported
    assert [t["Name"] for t in exported["accounts"]["acme"]["AlternateIdTypes"]] == ["Web"]


def test_an_unusable_accounts_setting_stops_the_sandbox():
    with pytest.raises(ValueError, match=r"SANDBOX_ACCOUNTS\.acme: AlternateIdTypes must be a list"):
        Served({"ACCOUNTS": {"acme": {"AlternateIdTypes": "CRM"}}})
