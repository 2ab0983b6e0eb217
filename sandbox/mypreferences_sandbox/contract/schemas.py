"""The vendor contract in marshmallow: request and response shapes, the documented rules, XML layout.

Field names are the wire names. Two pieces of XML layout ride along as plain data: a collection's
``xml_item`` (the element name of one entry) and a schema's ``xml_order`` (which elements the vendor's
XML sample shows, in its order). A rule enforced beyond a field's validators is stated beside it for
the OpenAPI document: in the field's metadata (``pattern``, ``description``), or, for a rule of the
whole shape, in its schema's ``json_schema``. Fields the vendor does not document a rule for are not
validated beyond their type: the sandbox invents no limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_dump, validate, validates_schema

from .errors import BadRequest
from .moments import EASTERN, timestamp, zone_name

COLLECTION_MESSAGE = "Expected a collection: a JSON array, or XML entry elements."
# A .NET long's largest value: the largest ProfileId (inferred) and PhoneNumberNumeric.
INT64_MAX = 2**63 - 1
OBJECT_MESSAGE = "Expected an object: a JSON object, or an XML element with child elements."


def utf16_length(text: str) -> int:
    """The length .NET reports for a string: UTF-16 code units, so an emoji counts twice."""
    return len(text.encode("utf-16-le")) // 2


class Named:
    """Error messages that may name the field: ``{name}`` in a message is the field's wire name."""

    name: str | None

    def make_error(self, key: str, **kwargs: Any) -> ValidationError:
        return super().make_error(key, name=self.name, **kwargs)  # type: ignore[misc]


class Text(Named, fields.String):
    """A string field with ASP.NET's Required and StringLength rules and messages."""

    # Not ClassVar: marshmallow declares it an instance attribute (each field gets a merged copy).
    default_error_messages = {  # noqa: RUF012
        "required": "The {name} field is required.",
        "null": "The {name} field is required.",
        "invalid": "Error converting value {value} to type 'System.String'.",
    }

    def __init__(
        self, *, max_length: int | None = None, min_length: int = 0, required: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(required=required, allow_none=not required, **kwargs)
        self.max_length = max_length
        self.min_length = min_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid", value=json.dumps(value))
        if self.required and not value.strip():
            raise self.make_error("required")
        length = utf16_length(value)
        too_long = self.max_length is not None and length > self.max_length
        if too_long or length < self.min_length:
            raise ValidationError(self._length_message())
        return value

    def _length_message(self) -> str:
        if self.min_length > 0:
            return (
                f"The field {self.name} must be a string with a minimum length of "
                f"{self.min_length} and a maximum length of {self.max_length}."
            )
        return f"The field {self.name} must be a string with a maximum length of {self.max_length}."


class Flag(fields.Boolean):
    """A boolean that must be a boolean: JSON true/false, XML true/false/1/0; null means absent."""

    default_error_messages = {  # noqa: RUF012 (not ClassVar: see Text)
        "invalid": "Error converting value {value} to type 'System.Boolean'.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", value=json.dumps(value))
        return value


CONSENT_STATUSES = {1: "Granted", 2: "Denied", 3: "Revoked", 4: "NotSet"}
PREFERENCE_TYPES = {1: "OptIn", 2: "OptOut"}


class Choice(Named, fields.Field):
    """A .NET enum: its number in JSON and its name in XML; like Json.NET, either is read."""

    default_error_messages = {  # noqa: RUF012 (not ClassVar: see Text)
        "required": "The {name} field is required.",
        "null": "The {name} field is required.",
        "invalid": "Error converting value {value} to type '{type_name}'; use one of {choices}.",
    }

    def __init__(self, names: Mapping[int, str], type_name: str) -> None:
        super().__init__(required=True, metadata={"xml_names": names})
        self.names = names
        self.type_name = type_name

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        numbers = {name.casefold(): number for number, name in self.names.items()}
        numbers |= {str(number): number for number in self.names}
        if isinstance(value, str) and value.strip().casefold() in numbers:
            return numbers[value.strip().casefold()]
        if isinstance(value, int) and not isinstance(value, bool) and value in self.names:
            return value
        shown = json.dumps(value) if isinstance(value, str | int | float | bool | None) else "of this type"
        choices = ", ".join(f"{number} ({name})" for number, name in self.names.items())
        raise self.make_error(
            "invalid",
            value=shown if len(shown) <= 50 else shown[:47] + "...",
            type_name=self.type_name,
            choices=choices,
        )


class Moment(Text):
    """An optional ISO 8601 date and time, loaded as its instant in UTC (``2026-01-02T08:04:05.000Z``);
    one without a zone is taken in ``zone``."""

    def __init__(self, *, zone: tzinfo = UTC, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zone = zone

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return timestamp(moment(text, self.zone))
        except (ValueError, OverflowError):
            raise ValidationError(f"The value '{text}' is not a valid ISO 8601 date and time.") from None


def moment(text: str, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 date and time in UTC (one without a zone is taken in ``zone``); ValueError or
    OverflowError when it is not one, or falls outside the years 1 to 9999 once in UTC."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    # fold=1: an hour a zone repeats is its later, standard-time one, as .NET's ConvertTimeToUtc reads it.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone, fold=1)).astimezone(UTC)


def phone_digits(number: str | None) -> str:
    """The digits of a phone number: what PhoneNumberNumeric holds and phone searches compare."""
    return re.sub(r"\D", "", number or "")


# How many ModelState errors one load may find before it stops (SANDBOX_MAX_MODEL_ERRORS, set for
# each request): ASP.NET Core stops at 200, so a megabyte of empty entries costs what 200 do.
error_limit: ContextVar[int] = ContextVar("error_limit", default=200)
# How many entries one collection may hold (SANDBOX_MAX_ENTRIES, set for each request): the
# sandbox's own bound, not the vendor's, so that a megabyte of "{}" entries is not stored, answered
# and rendered in XML at forty times its size.
entry_limit: ContextVar[int] = ContextVar("entry_limit", default=1000)


@dataclass
class _Budget:
    """The errors one load may still find, and whether it ran out (and so stopped checking)."""

    left: int
    stopped: bool = False


_budget: ContextVar[_Budget | None] = ContextVar("_budget", default=None)


class Items(fields.List):
    """A list of at most ``entry_limit`` entries, that stops reading once its load has found as
    many errors as it may (``error_limit``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list:
        if not isinstance(value, list):  # what JSON and XML are read into
            raise self.make_error("invalid")
        if len(value) > (most := entry_limit.get()):
            raise ValidationError(
                f"The sandbox keeps at most {most} entries in one collection (SANDBOX_MAX_ENTRIES); "
                f"this one has {len(value)}."
            )
        budget = _budget.get()
        result: list = []
        errors: dict[int, Any] = {}
        for index, each in enumerate(value):
            try:
                result.append(self.inner.deserialize(each, **kwargs))
            except ValidationError as error:
                errors[index] = error.messages
                if budget is not None:
                    budget.left -= sum(1 for _ in model_state(error.messages))
                    if budget.left <= 0:
                        budget.stopped = True
                        break
        if errors:
            raise ValidationError(errors)
        return result


def collection(entry: type[Schema], xml_item: str, **metadata: Any) -> fields.List:
    """A collection of ``entry`` objects; ``xml_item`` names one entry's XML element."""
    return Items(
        fields.Nested(entry),
        allow_none=True,
        metadata={"xml_item": xml_item, **metadata},
        error_messages={"invalid": COLLECTION_MESSAGE},
    )


# The vendor's data contracts' XML namespace.
NAMESPACE = "http://schemas.datacontract.org/2004/07/ProfileServices.REST.Models"


class Wire(Schema):
    """Base of every shape: ``xml_order`` lists its XML elements in order (empty: all, written as
    declared and read in DataContract's default order, alphabetical)."""

    xml_order: ClassVar[tuple[str, ...]] = ()
    xml_namespace: ClassVar[str] = NAMESPACE
    # Members written only when they hold something: the vendor's samples, taken from profiles
    # without them, lack them.
    omitted_when_empty: ClassVar[tuple[str, ...]] = ()

    @post_dump
    def _omit_what_is_empty(self, data: dict, **kwargs: Any) -> dict:
        for key in self.omitted_when_empty:
            if not data.get(key):
                data.pop(key, None)
        return data


class Contract(Wire):
    """Base of every request shape: unknown fields are ignored, as the vendor's stack does."""

    read_only: ClassVar[tuple[str, ...]] = ()

    class Meta:
        unknown = EXCLUDE

    # Not ClassVar: marshmallow declares it an instance attribute (each schema gets a merged copy).
    error_messages = {"type": OBJECT_MESSAGE}  # noqa: RUF012


# --- request shapes -------------------------------------------------------------------------


class PreferenceAttribute(Contract):
    """A key-value pair stored with a preference."""

    Key = Text(required=True, min_length=1)
    Value = Text()


class CreateProfilePreference(Contract):
    """A preference to store: its Filter, Opt-In (1) or Opt-Out (2), frequency and attributes."""

    FilterId = Text(required=True, min_length=1, max_length=50)
    PreferenceType = Choice(PREFERENCE_TYPES, "PreferenceTypes")
    FrequencyId = Text(max_length=20)
    PreferenceAttributes = collection(PreferenceAttribute, "PreferenceAttribute")


def preferences(xml_item: str = "CreateProfilePreference") -> fields.List:
    """A collection of preferences (of a profile, or of one of its contact elements)."""
    return collection(CreateProfilePreference, xml_item)


class CreateAddressEntry(Contract):
    # The order of the vendor's XML request sample: not alphabetical (a base type's members first).
    # Annotated as on Wire, or mypy would fix these ten names and refuse AddressEntry's own order.
    xml_order: ClassVar[tuple[str, ...]] = (
        "Address1", "Address2", "City", "CountryCode_Alpha2", "CountryCode_Alpha3", "CountryCode_Numeric",
        "PostalCode", "StateProvince", "AddressType", "IsDefault", "AddressPreferences",
    )  # fmt: skip

    AddressType = Text(max_length=100)
    IsDefault = Flag()
    Address1 = Text(required=True, min_length=1, max_length=125)
    Address2 = Text(max_length=125)
    City = Text(required=True, min_length=1, max_length=50)
    StateProvince = Text(required=True, min_length=2, max_length=50)
    CountryCode_Numeric = Text(max_length=3)
    CountryCode_Alpha2 = Text(max_length=2)
    CountryCode_Alpha3 = Text(max_length=3)
    PostalCode = Text(required=True, min_length=1, max_length=15)
    AddressPreferences = preferences()


class CreatePhoneNumberEntry(Contract):
    PhoneType = Text()
    PhoneNumber = Text()
    IsDefault = Flag()
    IsMobile = Flag()
    PhonePreferences = preferences()


class EmailEntry(Contract):
    EmailAddressType = Text(max_length=100)
    EmailAddress = Text(required=True, min_length=1, max_length=256)
    IsDefault = Flag()
    EmailPreferences = preferences()


class GroupEntry(Contract):
    GroupName = Text()
    GroupType = Text()
    IsPrimary = Flag()


class AlternateIdEntry(Contract):
    xml_order = ("AlternateId", "AlternateIdType")

    AlternateIdType = Text()
    AlternateId = Text()


class Tag(Contract):
    Name = Text()


class CustomFieldValue(Contract):
    Name = Text()
    Value = Text()


class CustomerName(Contract):
    xml_order = ("FirstName", "LastName", "MiddleName", "Prefix", "Suffix")

    FirstName = Text()
    MiddleName = Text()
    LastName = Text()
    Prefix = Text()
    Suffix = Text()


# What JSON Schema cannot say of a profile's AlternateIds (uniqueItems would not ignore case).
ALTERNATE_IDS = (
    "A pair a request repeats (case ignored) is kept once, with a warning; a pair another profile "
    "of the clientId holds is a 409 (a state document: two profiles holding one)."
)


class CreateUserProfile(Contract):
    """The body of ``POST {clientId}/Profile``."""

    # Annotated as on Contract, or mypy would fix these four names and refuse ImportedProfile's ().
    read_only: ClassVar[tuple[str, ...]] = ("ProfileId", "Edited", "Consents", "ReasonCode")
    # The order of the vendor's XML request sample, which is not alphabetical; its sample has no
    # preferences, which the sandbox reads last.
    xml_order = (
        "AlternateIds", "CustomerName", "CustomerType", "PreservePreferences", "Emails", "Groups",
        "IsActive", "DefaultLocale", "ProfileTags", "CustomFields", "RegistrationConfirmed", "Addresses",
        "PhoneNumbers", "ProfilePreferences",
    )  # fmt: skip

    Addresses = collection(CreateAddressEntry, "CreateAddressEntry")
    PhoneNumbers = collection(CreatePhoneNumberEntry, "CreatePhoneNumberEntry")
    IsActive = Flag()
    RegistrationConfirmed = Flag()
    DefaultLocale = Text(max_length=15)
    CustomerType = Text(max_length=100)
    PreservePreferences = Flag()
    CustomerName = fields.Nested(CustomerName, allow_none=True)
    AlternateIds = collection(AlternateIdEntry, "AlternateIdEntry", description=ALTERNATE_IDS)
    Emails = collection(EmailEntry, "EmailEntry")
    Groups = collection(GroupEntry, "GroupEntry")
    ProfileTags = collection(Tag, "Tag")
    CustomFields = collection(CustomFieldValue, "CustomFieldValue")
    ProfilePreferences = preferences()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _profile_rules(self, data: dict, original: Any, **kwargs: Any) -> None:
        # Checked on the original input so that these errors come with the field errors, all at once.
        if not isinstance(original, Mapping):
            return
        errors: dict[str, Any] = {}
        for name, noun in (("Addresses", "address"), ("Emails", "email")):
            defaults = sum(1 for entry in _entries(original, name) if entry.get("IsDefault") is True)
            if defaults > 1:
                errors[name] = [f"Only one {noun} can be the default; {defaults} have IsDefault true."]
        if errors:
            raise ValidationError(errors)


def _entries(original: Mapping, name: str) -> Iterator[Mapping]:
    value = original.get(name)
    if isinstance(value, list):
        yield from (entry for entry in value if isinstance(entry, Mapping))


def alternate_id_pair(entry: Mapping) -> tuple[str, str] | None:
    """The case-insensitive key of an AlternateId entry, or None when it lacks a type or an id."""
    kind, ident = entry.get("AlternateIdType"), entry.get("AlternateId")
    if isinstance(kind, str) and isinstance(ident, str):
        return kind.casefold(), ident.casefold()
    return None


class UpsertPreferences(Contract):
    """The body of ``POST {clientId}/Profile/Preferences/AlternateIdType/{t}/AlternateId/{id}``:
    preferences of the profile and of its contact elements (a missing contact element is added)."""

    ProfilePreferences = preferences()
    Addresses = collection(CreateAddressEntry, "CreateAddressPreference")
    PhoneNumbers = collection(CreatePhoneNumberEntry, "CreatePhoneNumberPreference")
    Emails = collection(EmailEntry, "CreateEmailPreference")


class ArchiveProfilePreference(Contract):
    """A profile preference to archive, by its Filter, with a reason of its own."""

    FilterId = Text(required=True, min_length=1, max_length=50)
    Reason_Code = Text()


class ArchiveEmailPreference(Contract):
    """Email preferences to archive: of a type, an address, or both, in one Filter or all."""

    EmailAddressType = Text()
    EmailAddress = Text()
    FilterId = Text(max_length=50)
    Reason_Code = Text()


class ArchivePhoneNumberPreference(Contract):
    """Phone preferences to archive: of a type, a number (its digits), or both, in one Filter or all."""

    PhoneType = Text()
    PhoneNumber = Text()
    FilterId = Text(max_length=50)
    Reason_Code = Text()


class ArchiveAddressPreference(Contract):
    """Address preferences to archive: of a type, an address (Address1, City, PostalCode), or both."""

    AddressType = Text()
    Address1 = Text()
    City = Text()
    PostalCode = Text()
    FilterId = Text(max_length=50)
    Reason_Code = Text()


class ArchivePreferences(Contract):
    """The body of ``PUT {clientId}/Profile/Preferences/{profileId}/Archive``."""

    GlobalDeactivate = Flag()
    Reason_Code = Text()
    PhoneNumbers = collection(ArchivePhoneNumberPreference, "ArchivePhoneNumberPreference")
    Addresses = collection(ArchiveAddressPreference, "ArchiveAddressPreference")
    Emails = collection(ArchiveEmailPreference, "ArchiveEmailPreference")
    ProfilePreferences = collection(ArchiveProfilePreference, "ArchiveProfilePreference")


class XmlPatchDocument(Contract):
    """A JSON Patch document in XML, as the vendor's help page shows it: DataContractSerializer sees
    only its ``ContractResolver``; the operations have no XML form."""

    xml_namespace = "http://schemas.datacontract.org/2004/07/Microsoft.AspNetCore.JsonPatch"

    ContractResolver = fields.Raw(allow_none=True)


class ReasonCode(Contract):
    """The optional body of ``POST {clientId}/Profile/{profileId}/Deactivate``."""

    Reason = Text(max_length=256)


class CreateCustomerConsent(Contract):
    ConsentType = Text(required=True, min_length=1, max_length=100)
    ConsentVersion = Text(required=True, min_length=1, max_length=50)
    Locale = Text(required=True, min_length=1, max_length=15)
    ConsentStatus = Choice(CONSENT_STATUSES, "ConsentStatus")
    ConsentDate = Moment(zone=EASTERN)


class CreateCustomerConsentList(Contract):
    """The body of ``POST {clientId}/Consents/{profileId}``: one or more consents."""

    Consents = Items(
        fields.Nested(CreateCustomerConsent),
        required=True,
        validate=validate.Length(min=1, error="At least one consent is required."),
        metadata={"xml_item": "CreateCustomerConsent"},
        error_messages={"invalid": COLLECTION_MESSAGE, "required": "The Consents field is required."},
    )


PATCH_OPERATIONS = ("add", "replace", "remove", "test")
# RFC 6901: a JSON Pointer to a member, never the whole document ("" is refused as missing), and
# no member of a profile document has an empty name.
JSON_POINTER = "^(/([^/~]|~[01])+)+$"


class PatchOperation(Contract):
    """One JSON Patch operation; the vendor allows add, replace, remove and test only."""

    # jsonpatch refuses an add, replace or test without a value.
    json_schema: ClassVar[dict[str, Any]] = {
        "anyOf": [{"properties": {"op": {"enum": ["remove"]}}}, {"required": ["value"]}]
    }

    op = fields.String(
        required=True,
        validate=validate.OneOf(
            PATCH_OPERATIONS,
            error="The operation '{input}' is not supported; use add, replace, remove or test.",
        ),
    )
    path = Text(
        required=True, metadata={"pattern": JSON_POINTER, "description": "A JSON Pointer (RFC 6901)."}
    )
    value = fields.Raw(allow_none=True)


class PatchDocument(Contract):
    """A JSON Patch document, as ``{"Operations": [...]}`` (a bare array is wrapped so by the view)."""

    Operations = Items(
        fields.Nested(PatchOperation),
        required=True,
        error_messages={"invalid": COLLECTION_MESSAGE, "required": "The Operations field is required."},
    )


# --- response shapes ------------------------------------------------------------------------
# Stored entries extend the request shapes with the fields the server generates; Meta.fields gives
# the order of the vendor's JSON sample, xml_order the order of its XML sample.


class EditInfo(Wire):
    xml_order = ("CreateDate", "CreatedBy", "ModifiedBy", "ModifiedDate")

    CreateDate = fields.String(allow_none=True)
    CreatedBy = fields.String(allow_none=True)
    ModifiedDate = fields.String(allow_none=True)
    ModifiedBy = fields.String(allow_none=True)


class ProfilePreference(Wire):
    """A stored preference, with what the vendor records of it (read-only)."""

    # No vendor XML sample shows one: DataContract's default order, alphabetical, as the sandbox reads
    # a CreateProfilePreference, so that a client echoing it loses nothing. Annotated as on Wire, so
    # that a shape extending this one may extend its order.
    xml_order: ClassVar[tuple[str, ...]] = (
        "ChannelId", "Consents", "ExpirationDate", "FilterId", "FrequencyId", "LastModifiedDate",
        "MatchType", "PreferenceAttributes", "PreferenceStatus", "PreferenceType", "ProgramId",
        "ReasonCode", "SourceId", "UserId",
    )  # fmt: skip

    ProgramId = fields.String(allow_none=True)
    ChannelId = fields.String(allow_none=True)
    Consents = fields.List(fields.Dict(), metadata={"description": "ConsentFilterVersion entries."})
    MatchType = fields.String()
    ReasonCode = fields.String(allow_none=True)
    ExpirationDate = fields.String(allow_none=True)
    PreferenceStatus = fields.String()
    LastModifiedDate = fields.String()
    UserId = fields.String()
    SourceId = fields.String(allow_none=True)
    FilterId = fields.String()
    PreferenceType = fields.Integer(metadata={"xml_names": PREFERENCE_TYPES})
    FrequencyId = fields.String(allow_none=True)
    PreferenceAttributes = collection(PreferenceAttribute, "PreferenceAttribute")


def stored_preferences() -> fields.List:
    """A collection of stored preferences."""
    return collection(ProfilePreference, "ProfilePreference")


class AddressEntry(CreateAddressEntry):
    # The vendor's XML sample shows no Cass* elements; its JSON sample does.
    xml_order = (
        "Address1", "Address2", "City", "CountryCode_Alpha2", "CountryCode_Alpha3",
        "CountryCode_Numeric", "PostalCode", "StateProvince", "Country", "AddressType",
        "IsDefault", "IsActive", "AddressPreferences",
    )  # fmt: skip

    class Meta:
        fields = (
            "AddressType", "IsDefault", "IsActive", "Country", "Address1", "Address2", "City",
            "StateProvince", "CountryCode_Numeric", "CountryCode_Alpha2", "CountryCode_Alpha3",
            "PostalCode", "CassAddress1", "CassAddress2", "CassCity", "CassStateProvince",
            "CassPostalCode", "CassStatus", "AddressPreferences",
        )  # fmt: skip

    omitted_when_empty = ("AddressPreferences",)
    AddressPreferences = stored_preferences()

    IsActive = fields.Boolean()
    # Generated, and null when there is nothing to generate (no known country, no US ZIP): dump
    # never checks allow_none, so it is here for the documentation's sake.
    Country = fields.String(allow_none=True)
    CassAddress1 = fields.String(allow_none=True)
    CassAddress2 = fields.String(allow_none=True)
    CassCity = fields.String(allow_none=True)
    CassStateProvince = fields.String(allow_none=True)
    CassPostalCode = fields.String(allow_none=True)
    CassStatus = fields.String()


class PhoneNumberEntry(CreatePhoneNumberEntry):
    # The vendor's XML sample's order; PhonePreferences, which it lacks, where the sandbox reads them
    # (alphabetical: after PhoneNumber, before PhoneType).
    xml_order = (
        "IsDefault", "IsActive", "IsMobile", "PhoneNumber", "PhonePreferences", "PhoneType",
        "PhoneNumberNumeric",
    )  # fmt: skip

    class Meta:
        fields = (
            "PhoneType", "PhoneNumber", "PhoneNumberNumeric", "IsDefault", "IsActive", "IsMobile",
            "PhonePreferences",
        )  # fmt: skip

    omitted_when_empty = ("PhonePreferences",)
    PhonePreferences = stored_preferences()

    PhoneNumberNumeric = fields.Integer(allow_none=True)  # null: no digits, or beyond Int64
    IsActive = fields.Boolean()


class StoredEmail(EmailEntry):
    # DataContract's default: the base EmailEntry's members alphabetical, as the sandbox reads them,
    # then IsActive.
    xml_order = ("EmailAddress", "EmailAddressType", "EmailPreferences", "IsDefault", "IsActive")

    omitted_when_empty = ("EmailPreferences",)
    IsActive = fields.Boolean()
    EmailPreferences = stored_preferences()


class StoredGroup(GroupEntry):
    xml_order = ("GroupId", "GroupType", "IsPrimary")

    class Meta:
        fields = ("GroupId", "GroupType", "IsPrimary")

    # Documented quirk: the JSON sample names the group GroupId, the XML sample GroupName.
    GroupId = fields.String(attribute="GroupName", allow_none=True, metadata={"xml_name": "GroupName"})


class CustomerConsent(Wire):
    # Annotated as on Wire, so that a shape extending this one may extend its order.
    xml_order: ClassVar[tuple[str, ...]] = (
        "ConsentStatus", "ConsentType", "ConsentVersion", "Locale", "Expired", "ExpirationDate",
        "ConsentDate", "Edited",
    )  # fmt: skip

    ConsentType = fields.String()
    Locale = fields.String()
    ConsentStatus = fields.Integer(metadata={"xml_names": CONSENT_STATUSES})
    ConsentVersion = fields.String()
    Expired = fields.Boolean()
    ExpirationDate = fields.String(allow_none=True)
    ConsentDate = fields.String()
    Edited = fields.Nested(EditInfo)


class UserProfile(Wire):
    """A stored profile as the vendor returns it: JSON in the JSON sample's order, XML in the XML's."""

    # ReasonCode is set by Deactivate only: the samples, taken from active profiles, lack it.
    omitted_when_empty = ("ReasonCode", "ProfilePreferences")

    # The vendor's XML sample has no DefaultLocale element; its JSON sample does.
    xml_order = (
        "AlternateIds", "CustomerName", "CustomerType", "PreservePreferences", "Emails", "Groups",
        "IsActive", "ProfileTags", "CustomFields", "ReasonCode", "RegistrationConfirmed", "Addresses",
        "Consents", "Edited", "PhoneNumbers", "ProfileId", "ProfilePreferences",
    )  # fmt: skip

    ProfileId = fields.Integer()
    Edited = fields.Nested(EditInfo)
    Addresses = collection(AddressEntry, "AddressEntry")
    PhoneNumbers = collection(PhoneNumberEntry, "PhoneNumberEntry")
    Consents = collection(CustomerConsent, "CustomerConsent")
    ReasonCode = fields.String()
    IsActive = fields.Boolean()
    RegistrationConfirmed = fields.Boolean()
    DefaultLocale = fields.String()
    CustomerType = fields.String()
    PreservePreferences = fields.Boolean()
    CustomerName = fields.Nested(CustomerName)
    AlternateIds = collection(AlternateIdEntry, "AlternateIdEntry")
    Emails = collection(StoredEmail, "EmailEntry")
    Groups = collection(StoredGroup, "GroupEntry")
    ProfileTags = collection(Tag, "Tag")
    CustomFields = collection(CustomFieldValue, "CustomFieldValue")
    ProfilePreferences = stored_preferences()


class ImportedConsent(CreateCustomerConsent):
    """A consent in a state document: as recorded by POST Consents, its other fields optional."""

    Expired = Flag()
    ExpirationDate = Moment()
    Edited = fields.Nested(EditInfo, allow_none=True)


class ImportedProfile(CreateUserProfile):
    """A profile in a state document: a create body, plus the fields the server would generate
    that a state document may carry (each optional)."""

    read_only = ()

    # At most a .NET long (inferred): the sandbox keeps ProfileIds as 64-bit integers.
    ProfileId = fields.Integer(
        strict=True,
        validate=validate.Range(
            min=1, max=INT64_MAX, error="A ProfileId is from {min} to {max} (a .NET long)."
        ),
    )
    Edited = fields.Nested(EditInfo, allow_none=True)
    Consents = collection(ImportedConsent, "CustomerConsent")
    ReasonCode = Text(max_length=256)


class Error(Schema):
    """ASP.NET Web API's HttpError. In XML, ``<Error>``, ModelState keys encoded as
    XmlConvert.EncodeLocalName does, several messages of a key joined by a space."""

    json_schema: ClassVar[dict[str, Any]] = {"xml": {"name": "Error"}}  # ASP.NET's: in no namespace

    Message = fields.String(required=True)
    MessageDetail = fields.String()
    ModelState = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class TypeEntry(Wire):
    """A type of an account's configuration (an AlternateId type, an address type, ...), named in
    the locale asked for."""

    Id = fields.Integer()
    Name = fields.String()
    Description = fields.String(allow_none=True)


class AlternateIdTypeEntry(TypeEntry):
    """An AlternateId type of the account."""


class AddressTypeEntry(TypeEntry):
    """An address type of the account."""


class ConsentTypeEntry(TypeEntry):
    """A consent type of the account."""


class AlternateIdTypeEntryList(Wire):
    """The answer of ``GET {clientId}/AlternateIdTypes``."""

    AlternateIdTypes = collection(AlternateIdTypeEntry, "AlternateIdTypeEntry")


class AddressTypeEntryList(Wire):
    """The answer of ``GET {clientId}/AddressTypes``."""

    AddressTypes = collection(AddressTypeEntry, "AddressTypeEntry")


class ConsentTypeEntryList(Wire):
    """The answer of ``POST {clientId}/ConsentTypes``: the consent types created."""

    ConsentTypes = collection(ConsentTypeEntry, "ConsentTypeEntry")


class CreateConsentType(Contract):
    """A consent type to create: its Name as consents name it, and a Description."""

    Name = Text(required=True, min_length=1, max_length=100)
    Description = Text(max_length=256)


class CreateConsentTypeList(Contract):
    """The body of ``POST {clientId}/ConsentTypes``: one or more consent types."""

    ConsentTypes = Items(
        fields.Nested(CreateConsentType),
        required=True,
        validate=validate.Length(min=1, error="At least one consent type is required."),
        metadata={"xml_item": "CreateConsentType"},
        error_messages={"invalid": COLLECTION_MESSAGE, "required": "The ConsentTypes field is required."},
    )


class ConsentStatusEntry(Wire):
    """One consent status: its number and name."""

    Id = fields.Integer()
    Name = fields.String()


class ConsentStatusList(Wire):
    """The answer of ``GET {clientId}/ConsentStatus``: the statuses in a ``ConsentStatus`` member."""

    ConsentStatus = collection(ConsentStatusEntry, "ConsentStatus")


# --- documentation -------------------------------------------------------------------------


def openapi_attributes(field: fields.Field) -> dict:
    """What OpenAPI should say of a field beyond what apispec reads of it: the sandbox's own
    fields' types and rules, and the XML layout its metadata carries."""
    extra: dict[str, Any] = {"type": "integer"} if isinstance(field, Choice) else {}
    if isinstance(field, Text):
        # Text keeps its limits as attributes, not validators; required also refuses "" and blanks.
        minimum = max(field.min_length, 1 if field.required else 0)
        if minimum:
            # The rule counts UTF-16 units, JSON Schema characters: one astral character is two units.
            extra["minLength"] = -(-minimum // 2) if field.min_length > 1 else minimum
        if field.max_length is not None:
            extra["maxLength"] = field.max_length
    if isinstance(field, Moment):
        extra |= {
            "format": "date-time",
            "description": f"ISO 8601; without a zone it is {zone_name(field.zone)}.",
        }
    if "xml_names" in field.metadata:
        names = field.metadata["xml_names"]
        named = ", ".join(f"{number} {name}" for number, name in names.items())
        extra["enum"] = list(names)
        extra["description"] = f"{named}. In XML, the name; either form is read."
    if "xml_name" in field.metadata:
        extra["xml"] = {"name": field.metadata["xml_name"]}
    if isinstance(field, fields.List) and "xml_item" in field.metadata:
        extra["xml"] = {"wrapped": True}
    return extra


# --- loading --------------------------------------------------------------------------------


def load(schema: Schema, data: Any, *, prefix: str = "", message: str | None = None) -> dict:
    """Validate ``data`` against ``schema``; its errors (up to ``error_limit``) at once as a 400
    (saying ``message``) with ModelState keys under ``prefix``."""
    budget = _Budget(error_limit.get())
    token = _budget.set(budget)
    try:
        return schema.load(data)
    except ValidationError as error:
        found = dict(model_state(error.messages, prefix))
        raise BadRequest(message, model_state=found, stopped=budget.stopped) from None
    finally:
        _budget.reset(token)


def model_state(messages: Any, path: str = "") -> Iterator[tuple[str, list[str]]]:
    """Flatten marshmallow's nested messages into ASP.NET ModelState keys: ``Addresses[0].City``."""
    if not isinstance(messages, Mapping):
        yield path or "body", list(messages)
        return
    for key, value in messages.items():
        if key == "_schema":
            child = path
        elif isinstance(key, int):
            child = f"{path}[{key}]"
        else:
            child = f"{path}.{key}" if path else str(key)
        yield from model_state(value, child)


# --- the history operations' answers ---------------------------------------------------------
# Where the vendor shows no XML sample, elements are written in DataContract's default order,
# alphabetical (a base type's members first), as the sandbox reads them (docs/fidelity.md).


class HistoricalConsent(CustomerConsent):
    """A consent as the consent history shows it, with the vendor's read-only Status: always
    `Complete`, as the sandbox records a consent completely when it is posted."""

    # CustomerConsent leaves its xml_order unannotated, so mypy fixes it at eight names.
    xml_order = (*CustomerConsent.xml_order, "Status")

    Status = fields.String(dump_default="Complete")


class ConsentHistory(Wire):
    """The answer of the consent history operations: the basic profile (no contact elements, custom
    fields, groups, tags or preferences) and every consent it was given, ascending by ConsentType,
    ConsentVersion (case ignored) and Edited.ModifiedDate."""

    xml_order = (
        "Consents", "CustomerName", "CustomerType", "DefaultLocale", "Edited", "IsActive",
        "PreservePreferences", "ProfileId", "RegistrationConfirmed",
    )  # fmt: skip

    Consents = collection(HistoricalConsent, "HistoricalConsent")
    ProfileId = fields.Integer()
    IsActive = fields.Boolean()
    Edited = fields.Nested(EditInfo)
    RegistrationConfirmed = fields.Boolean()
    CustomerType = fields.String()
    PreservePreferences = fields.Boolean()
    CustomerName = fields.Nested(CustomerName)
    DefaultLocale = fields.String()


class PreferenceContact(Wire):
    """The contact element a preference belongs to, by what identifies it: an email's
    EmailAddress, a phone's PhoneNumber, or an address's Address1, City and PostalCode."""

    xml_order = ("Address1", "City", "EmailAddress", "PhoneNumber", "PostalCode")

    EmailAddress = fields.String(allow_none=True)
    PhoneNumber = fields.String(allow_none=True)
    Address1 = fields.String(allow_none=True)
    City = fields.String(allow_none=True)
    PostalCode = fields.String(allow_none=True)


class HistoricalPreference(ProfilePreference):
    """A preference as it was set at its LastModifiedDate (PreferenceStatus `Archived`: gone then,
    with the write's ReasonCode), and the contact element it belonged to (null: the profile's own)."""

    xml_order = (*ProfilePreference.xml_order, "ContactElement")

    ContactElement = fields.Nested(PreferenceContact, allow_none=True)


class ConsentFilter(Wire):
    """A Filter of the profile's preferences and the consent versions associated with it: TypeName
    is the contact element's type for a channel's preference, the CustomerType for the profile's own."""

    xml_order = ("Consents", "FilterId", "Implied", "TypeName")

    FilterId = fields.String()
    TypeName = fields.String(allow_none=True)
    Implied = fields.Boolean()
    Consents = fields.List(
        fields.Dict(), metadata={"description": "ConsentFilterVersion entries (the sandbox keeps none)."}
    )


def reject_constant(name: str) -> None:
    """Refuse NaN and Infinity, which json reads and JSON does not have."""
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)
