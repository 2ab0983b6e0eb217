"""The fields the server generates on create, seen in the response and in what is stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from helpers import Served, minimal_profile, post_json, vendor

ADDRESS = {"Address1": " 1  Main st ", "City": "Atlanta", "StateProvince": "ga", "PostalCode": "30301"}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def create(url: str, **fields: object) -> dict:
    response = post_json(url, minimal_profile(**fields))
    assert response.status_code == 201, response.text
    return response.json()


def test_edited_is_set_in_utc_by_the_caller(profile_url):
    before = datetime.now(UTC) - timedelta(seconds=1)

    edited = create(profile_url)["Edited"]

    assert ISO_UTC.fullmatch(edited["CreateDate"])
    assert edited["ModifiedDate"] == edited["CreateDate"]
    assert before <= datetime.fromisoformat(edited["CreateDate"]) <= datetime.now(UTC)
    assert edited["CreatedBy"] == edited["ModifiedBy"] == "tester"  # the UserId of helpers.auth()


def test_default_user_stands_in_when_the_caller_is_unknown():
    with Served({"DEFAULT_USER": "integration-bot", "AUTH_MODE": "off"}) as served:
        edited = create(f"{served.url}/acme/Profile")["Edited"]

    assert edited["CreatedBy"] == edited["ModifiedBy"] == "integration-bot"


def test_documented_defaults(profile_url):
    profile = create(profile_url)

    assert profile["IsActive"] is True
    assert profile["RegistrationConfirmed"] is False
    assert profile["PreservePreferences"] is True
    assert profile["CustomerType"] == "Customer"
    assert profile["DefaultLocale"] == "en_US"
    assert profile["Emails"][0]["IsActive"] is True


def test_given_values_override_the_defaults(profile_url):
    profile = create(
        profile_url,
        IsActive=False,
        RegistrationConfirmed=True,
        PreservePreferences=False,
        CustomerType="Prospect",
        DefaultLocale="fr_CA",
    )

    assert (profile["IsActive"], profile["RegistrationConfirmed"], profile["PreservePreferences"]) == (
        False,
        True,
        False,
    )
    assert (profile["CustomerType"], profile["DefaultLocale"]) == ("Prospect", "fr_CA")


def test_account_defaults_are_configurable_per_client():
    accounts = {"acme": {"DefaultCustomerType": "Member", "DefaultLocale": "de_DE"}}
    with Served({"ACCOUNTS": accounts, "DEFAULT_LOCALE": "en_GB"}) as served:
        acme = create(f"{served.url}/acme/Profile")
        other = create(f"{served.url}/other/Profile")

    assert (acme["CustomerType"], acme["DefaultLocale"]) == ("Member", "de_DE")
    assert (other["CustomerType"], other["DefaultLocale"]) == ("Customer", "en_GB")


@pytest.mark.parametrize(
    ("number", "numeric"),
    [("(404) 555-0100", 4045550100), ("+1 404.555.0100 x12", 1404555010012), ("unknown", None), (None, None)],
)
def test_phone_number_numeric_is_its_digits(profile_url, number, numeric):
    [phone] = create(profile_url, PhoneNumbers=[{"PhoneNumber": number}])["PhoneNumbers"]

    assert phone["PhoneNumberNumeric"] == numeric
    assert (phone["IsActive"], phone["IsDefault"], phone["IsMobile"]) == (True, False, False)


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"CountryCode_Alpha2": "US"}, ("United States", "US", "USA", "840")),
        ({"CountryCode_Alpha3": "can"}, ("Canada", "CA", "can", "124")),
        ({"CountryCode_Numeric": "36"}, ("Australia", "AU", "AUS", "36")),
        ({"CountryCode_Alpha2": "DE", "CountryCode_Numeric": "840"}, ("Germany", "DE", "DEU", "840")),
        ({"CountryCode_Alpha2": "ZZ"}, (None, "ZZ", None, None)),
        ({}, (None, None, None, None)),
    ],
    ids=["alpha2", "alpha3-lowercase", "numeric-unpadded", "first-given-wins", "unknown", "none"],
)
def test_country_and_missing_codes_come_from_iso_3166(profile_url, codes, expected):
    [address] = create(profile_url, Addresses=[{**ADDRESS, **codes}])["Addresses"]

    assert (
        address["Country"],
        address["CountryCode_Alpha2"],
        address["CountryCode_Alpha3"],
        address["CountryCode_Numeric"],
    ) == expected


@pytest.mark.parametrize(
    ("postal_code", "cass_postal_code"),
    [("30301", "30301"), ("30301-1234", "30301-1234"), ("303011234", "30301-1234")],
)
def test_us_address_with_a_zip_code_is_standardized(profile_url, postal_code, cass_postal_code):
    address = {**ADDRESS, "Address2": "suite  5", "PostalCode": postal_code, "CountryCode_Alpha2": "US"}

    [stored] = create(profile_url, Addresses=[address])["Addresses"]

    assert {key: value for key, value in stored.items() if key.startswith("Cass")} == {
        "CassAddress1": "1 MAIN ST",
        "CassAddress2": "SUITE 5",
        "CassCity": "ATLANTA",
        "CassStateProvince": "GA",
        "CassPostalCode": cass_postal_code,
        "CassStatus": "Y",
    }
    assert stored["Address1"] == " 1  Main st "


@pytest.mark.parametrize(
    "changes",
    [
        {"CountryCode_Alpha2": "CA", "PostalCode": "M5V 2T6"},
        {"CountryCode_Alpha2": "US", "PostalCode": "3030"},
        {"PostalCode": "30301"},
    ],
    ids=["not-us", "not-a-zip", "no-country"],
)
def test_any_other_address_is_not_standardized(profile_url, changes):
    [stored] = create(profile_url, Addresses=[{**ADDRESS, **changes}])["Addresses"]

    assert stored["CassStatus"] == "N"
    assert [stored[key] for key in stored if key.startswith("Cass") and key != "CassStatus"] == [None] * 5


def test_entries_are_active_and_flags_default_to_false(profile_url):
    profile = create(
        profile_url,
        Addresses=[ADDRESS],
        Groups=[{"GroupName": "Gold", "GroupType": "Tier"}],
    )

    assert (profile["Addresses"][0]["IsActive"], profile["Addresses"][0]["IsDefault"]) == (True, False)
    assert profile["Groups"] == [{"GroupId": "Gold", "GroupType": "Tier", "IsPrimary": False}]


def test_groups_answer_group_id_in_json_and_group_name_in_xml(profile_url):
    created = create(profile_url, Groups=[{"GroupName": "Gold", "GroupType": "Tier", "IsPrimary": True}])

    xml = vendor.get(
        f"{profile_url}/{created['ProfileId']}", headers={"Accept": "application/xml"}, timeout=10
    ).text

    assert created["Groups"][0]["GroupId"] == "Gold"
    assert (
        "<GroupEntry><GroupName>Gold</GroupName><GroupType>Tier</GroupType><IsPrimary>true</IsPrimary>" in xml
    )


@pytest.mark.parametrize("number", ["1" * 5000, "9" * 19])
def test_phone_number_numeric_is_null_beyond_an_int64(profile_url, number):
    [phone] = create(profile_url, PhoneNumbers=[{"PhoneNumber": number}])["PhoneNumbers"]

    assert phone["PhoneNumberNumeric"] is None
