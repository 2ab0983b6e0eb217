"""The Profile endpoints over real HTTP: the vendor's samples, both formats, both path prefixes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from helpers import JSON, XML, fixture_bytes, fixture_json, vendor, warnings_of

NS = "{http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models}"
SAMPLES = [("create-profile.json", JSON), ("create-profile.xml", XML)]
PREFIXES = ["", "/Profiles"]


def json_layout(value: object) -> object:
    """The keys of a JSON document, in order, nested; a collection by its first entry."""
    if isinstance(value, dict):
        return [(key, json_layout(child)) for key, child in value.items() if key != "Consents"]
    if isinstance(value, list):
        return [json_layout(value[0])] if value else []
    return None


def xml_layout(element: ET.Element) -> object:
    """The element names of an XML document, in order, nested."""
    return [
        (child.tag.replace(NS, ""), xml_layout(child)) for child in element if child.tag != f"{NS}Consents"
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("sample", "media_type"), SAMPLES)
def test_corrected_sample_is_created_with_location_and_read_back(
    base_url, client_id, served, prefix, sample, media_type
):
    created = vendor.post(
        f"{base_url}{prefix}/{client_id}/Profile",
        data=fixture_bytes(sample),
        headers={"Content-Type": media_type},
        timeout=10,
    )

    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"] == f"{media_type}; charset=utf-8"
    assert warnings_of(created) == []
    [stored] = served.profiles(client_id)
    location = f"{base_url}{prefix}/{client_id}/Profile/{stored['ProfileId']}"
    assert created.headers["Location"] == location
    fetched = vendor.get(location, headers={"Accept": media_type}, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == created.content


@pytest.mark.parametrize("prefix", PREFIXES)
def test_json_response_has_every_field_of_the_documented_sample_in_its_order(profile_url, base_url, prefix):
    url = profile_url.replace(base_url, base_url + prefix)
    created = vendor.post(url, json=fixture_json("create-profile.json"), timeout=10)

    body = created.json()
    assert json_layout(body) == json_layout(fixture_json("vendor/create-profile-response.json"))
    assert body["Consents"] == []
    assert body["CustomerName"] == fixture_json("create-profile.json")["CustomerName"]
    assert [group["GroupId"] for group in body["Groups"]] == ["sample string 2"] * 2


@pytest.mark.parametrize("prefix", PREFIXES)
def test_xml_response_has_the_documented_root_namespace_names_and_order(profile_url, base_url, prefix):
    url = profile_url.replace(base_url, base_url + prefix)
    created = vendor.post(
        url, data=fixture_bytes("create-profile.xml"), headers={"Content-Type": XML}, timeout=10
    )

    document = ET.fromstring(created.content)
    sample = ET.fromstring(fixture_bytes("vendor/create-profile-response.xml"))
    assert document.tag == f"{NS}UserProfile"
    assert created.text.startswith(
        '<UserProfile xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns="http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models">'
    )
    assert xml_layout(document) == xml_layout(sample)
    assert document.find(f"{NS}Consents") is not None
    assert len(document.find(f"{NS}Consents")) == 0
    assert [g.findtext(f"{NS}GroupName") for g in document.iter(f"{NS}GroupEntry")] == ["sample string 2"] * 2


@pytest.mark.parametrize(("sample", "media_type"), SAMPLES)
def test_json_and_xml_creates_store_the_same_profile(base_url, client_id, served, sample, media_type):
    vendor.post(
        f"{base_url}/{client_id}/Profile",
        data=fixture_bytes(sample),
        headers={"Content-Type": media_type, "Accept": JSON},
        timeout=10,
    )

    [stored] = served.profiles(client_id)
    del stored["ProfileId"], stored["Edited"]
    expected = json.loads(fixture_bytes("create-profile.json"))
    assert [address["PostalCode"] for address in stored["Addresses"]] == ["30301", "M5V 2T6"]
    assert stored["AlternateIds"] == expected["AlternateIds"]
    assert stored["CustomFields"] == expected["CustomFields"]
    assert stored["Groups"] == expected["Groups"]
    assert [email["IsDefault"] for email in stored["Emails"]] == [True, False]


VENDOR_SAMPLE_ERRORS = {
    **{
        f"Addresses[{index}].{field}": [f"The field {field} must be a string with {limits}."]
        for index in (0, 1)
        for field, limits in (
            ("CountryCode_Numeric", "a maximum length of 3"),
            ("CountryCode_Alpha2", "a maximum length of 2"),
            ("CountryCode_Alpha3", "a maximum length of 3"),
            ("PostalCode", "a minimum length of 1 and a maximum length of 15"),
        )
    },
    "Addresses": ["Only one address can be the default; 2 have IsDefault true."],
    "Emails": ["Only one email can be the default; 2 have IsDefault true."],
}


def test_vendor_json_sample_breaks_exactly_the_documented_rules(profile_url, served, client_id):
    response = vendor.post(
        profile_url,
        data=fixture_bytes("vendor/create-profile-request.json"),
        headers={"Content-Type": JSON},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json() == {"Message": "The request is invalid.", "ModelState": VENDOR_SAMPLE_ERRORS}
    assert served.profiles(client_id) == []


def test_vendor_xml_sample_breaks_exactly_the_documented_rules(profile_url, served, client_id):
    response = vendor.post(
        profile_url,
        data=fixture_bytes("vendor/create-profile-request.xml"),
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    error = ET.fromstring(response.content)
    assert error.tag == "Error"
    assert error.findtext("Message") == "The request is invalid."
    model_state = {
        child.tag.replace("_x005B_", "[").replace("_x005D_", "]"): child.text
        for child in error.find("ModelState")
    }
    assert model_state == {key: " ".join(messages) for key, messages in VENDOR_SAMPLE_ERRORS.items()}
    assert served.profiles(client_id) == []


def test_unknown_profile_id_is_404_in_the_vendor_shape(profile_url):
    response = vendor.get(f"{profile_url}/999999999", timeout=10)

    assert response.status_code == 404
    assert response.json() == {
        "Message": f"No profile with ProfileId 999999999 exists for '{profile_url.split('/')[-2]}'."
    }


def test_profile_of_another_client_is_404(base_url, client_id):
    created = vendor.post(
        f"{base_url}/{client_id}/Profile", json=fixture_json("create-profile.json"), timeout=10
    )
    profile_id = created.json()["ProfileId"]

    response = vendor.get(
        f"{base_url}/other-{client_id}/Profile/{profile_id}", headers={"Accept": XML}, timeout=10
    )

    assert response.status_code == 404
    assert ET.fromstring(response.content).findtext("Message").startswith("No profile with ProfileId")
    assert vendor.get(f"{base_url}/{client_id}/Profile/{profile_id}", timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/acme/Profile/abc", "/acme/Nothing", "/Profiles/acme/Profile/1/2"])
def test_unknown_path_is_404_naming_the_uri(base_url, path):
    response = vendor.get(base_url + path, timeout=10)

    assert response.status_code == 404
    assert response.json()["Message"] == (
        f"No HTTP resource was found that matches the request URI '{base_url}{path}'."
    )


def test_wrong_method_is_405_with_allow(profile_url):
    response = vendor.delete(profile_url, timeout=10)

    assert response.status_code == 405
    assert response.json() == {"Message": "The requested resource does not support http method 'DELETE'."}
    # In one order, the same on every process (werkzeug gives the methods as a set).
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, PATCH, POST, PUT"


def test_reserved_control_prefix_is_not_a_client_id(base_url):
    response = vendor.post(
        f"{base_url}/_sandbox/Profile", json=fixture_json("create-profile.json"), timeout=10
    )

    assert response.status_code == 404


def test_unknown_path_lists_the_routes_the_sandbox_serves(base_url):
    response = vendor.get(f"{base_url}/nothing/here", timeout=10)

    detail = response.json()["MessageDetail"]
    assert response.status_code == 404
    assert detail.startswith("The sandbox serves: ")
    for route in (
        "POST /{clientId}/Profile",
        "GET /{clientId}/Profile/AlternateIdType/{alternateIdType}/AlternateId/{alternateId}",
        "DELETE /Profiles/{clientId}/Profile/{profileId}",
        "GET /_sandbox/health",
        "POST /oauth/token",
    ):
        assert route in detail
