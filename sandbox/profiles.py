"""A profile as the vendor keeps it: the fields the server generates from a validated create request.

Stored profiles use the JSON sample's names (groups keep ``GroupName``; the response schema renames).
Where the vendor's behaviour is undocumented the rule chosen here is written in the README.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pycountry

from . import schemas

ZIP_CODE = re.compile(r"(\d{5})(?:-?(\d{4}))?")
CASS_FIELDS = ("CassAddress1", "CassAddress2", "CassCity", "CassStateProvince", "CassPostalCode")


@dataclass(frozen=True)
class Account:
    """A clientId's account settings: the defaults applied to a profile that omits them."""

    customer_type: str
    locale: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any], client_id: str) -> Account:
        """The settings of ``client_id``: its entry in ``ACCOUNTS``, else the server-wide defaults."""
        own = config["ACCOUNTS"].get(client_id, {})
        return cls(
            customer_type=own.get("DefaultCustomerType", config["DEFAULT_CUSTOMER_TYPE"]),
            locale=own.get("DefaultLocale", config["DEFAULT_LOCALE"]),
        )


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as ``Edited`` dates are written."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_profile(data: Mapping[str, Any], *, account: Account, user: str, now: datetime) -> dict:
    """The stored form of a profile created from validated request ``data`` (no ProfileId yet)."""
    stamp = timestamp(now)
    return {
        "Edited": {"CreateDate": stamp, "CreatedBy": user, "ModifiedDate": stamp, "ModifiedBy": user},
        "Addresses": [address(entry) for entry in data.get("Addresses") or ()],
        "PhoneNumbers": [phone_number(entry) for entry in data.get("PhoneNumbers") or ()],
        "Consents": [],
        "IsActive": _value(data, "IsActive", default=True),
        "RegistrationConfirmed": _value(data, "RegistrationConfirmed", default=False),
        "DefaultLocale": _value(data, "DefaultLocale", account.locale),
        "CustomerType": _value(data, "CustomerType", account.customer_type),
        "PreservePreferences": _value(data, "PreservePreferences", default=True),
        "CustomerName": _copy(data.get("CustomerName") or {}, schemas.CustomerName),
        "AlternateIds": [_copy(e, schemas.AlternateIdEntry) for e in data.get("AlternateIds") or ()],
        "Emails": [
            _copy(entry, schemas.EmailEntry) | {"IsDefault": _value(entry, "IsDefault"), "IsActive": True}
            for entry in data.get("Emails") or ()
        ],
        "Groups": [
            _copy(entry, schemas.GroupEntry) | {"IsPrimary": _value(entry, "IsPrimary")}
            for entry in data.get("Groups") or ()
        ],
        "ProfileTags": [_copy(entry, schemas.Tag) for entry in data.get("ProfileTags") or ()],
        "CustomFields": [_copy(e, schemas.CustomFieldValue) for e in data.get("CustomFields") or ()],
    }


def address(entry: Mapping[str, Any]) -> dict:
    """A stored address: country codes completed from ISO 3166, and the Cass* fields."""
    stored = _copy(entry, schemas.CreateAddressEntry)
    stored |= {"IsDefault": _value(entry, "IsDefault"), "IsActive": True, "Country": None}
    country = find_country(entry)
    if country is not None:
        stored["Country"] = country.name
        for key, value in (
            ("CountryCode_Alpha2", country.alpha_2),
            ("CountryCode_Alpha3", country.alpha_3),
            ("CountryCode_Numeric", country.numeric),
        ):
            stored[key] = stored[key] or value
    return stored | cass(stored, country)


def find_country(entry: Mapping[str, Any]) -> Any | None:
    """The ISO 3166 country named by the first code given (Alpha2, Alpha3, then Numeric)."""
    for key, attribute in (
        ("CountryCode_Alpha2", "alpha_2"),
        ("CountryCode_Alpha3", "alpha_3"),
        ("CountryCode_Numeric", "numeric"),
    ):
        code = (entry.get(key) or "").strip()
        if code:
            code = code.zfill(3) if attribute == "numeric" else code
            return pycountry.countries.get(**{attribute: code})
    return None


def cass(stored: Mapping[str, Any], country: Any | None) -> dict:
    """The sandbox's stand-in for CASS: a US address with a ZIP or ZIP+4 is standardized ("Y")
    by collapsing white space and upper-casing; any other address is not ("N", Cass* null)."""
    match = ZIP_CODE.fullmatch((stored["PostalCode"] or "").strip())
    if country is None or country.alpha_2 != "US" or match is None:
        return dict.fromkeys(CASS_FIELDS) | {"CassStatus": "N"}
    return {
        "CassAddress1": _standard(stored["Address1"]),
        "CassAddress2": _standard(stored["Address2"]),
        "CassCity": _standard(stored["City"]),
        "CassStateProvince": _standard(stored["StateProvince"]),
        "CassPostalCode": "-".join(part for part in match.groups() if part),
        "CassStatus": "Y",
    }


def phone_number(entry: Mapping[str, Any]) -> dict:
    """A stored phone number; PhoneNumberNumeric is its digits as an integer (null when none)."""
    digits = re.sub(r"\D", "", entry.get("PhoneNumber") or "")
    return _copy(entry, schemas.CreatePhoneNumberEntry) | {
        "PhoneNumberNumeric": int(digits) if digits else None,
        "IsDefault": _value(entry, "IsDefault"),
        "IsActive": True,
        "IsMobile": _value(entry, "IsMobile"),
    }


def _copy(entry: Mapping[str, Any], shape: type[schemas.Contract]) -> dict:
    """Every field of ``shape``, taken from ``entry`` (null where absent)."""
    return {key: entry.get(key) for key in shape._declared_fields}


def _value(data: Mapping[str, Any], key: str, default: Any = False) -> Any:
    """``data[key]``, or ``default`` where it is absent or null."""
    value = data.get(key)
    return default if value is None else value


def _standard(text: str | None) -> str | None:
    return " ".join(text.split()).upper() if text else None
