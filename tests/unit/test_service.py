"""The profile service without HTTP: every operation over an in-memory store, with validated documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mypreferences_sandbox.contract import schemas
from mypreferences_sandbox.contract.errors import BadRequest, Conflict, Forbidden, NotFound
from mypreferences_sandbox.domain.accounts import Accounts
from mypreferences_sandbox.domain.history import History
from mypreferences_sandbox.domain.profiles import Account, Editor
from mypreferences_sandbox.domain.service import AlternateId, ProfileService, Search
from mypreferences_sandbox.domain.store import MemoryStore

ACCOUNT = Account("Customer", "en_US")
CREATED_AT = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
CHANGED_AT = datetime(2026, 2, 1, 12, 30, 15, 250_000, tzinfo=UTC)
CREATOR = Editor(ACCOUNT, "tester", CREATED_AT)
CHANGER = Editor(ACCOUNT, "changer", CHANGED_AT)
CREATED = {
    "CreateDate": "2026-01-01T09:00:00.000Z",
    "CreatedBy": "tester",
    "ModifiedDate": "2026-01-01T09:00:00.000Z",
    "ModifiedBy": "tester",
}
CHANGED = {**CREATED, "ModifiedDate": "2026-02-01T12:30:15.250Z", "ModifiedBy": "changer"}
CRM = AlternateId("crm", "C-1")


def create_document(**fields: object) -> dict:
    """A create request body, validated as a view hands it to the service."""
    return schemas.load(schemas.CreateUserProfile(), fields)


def consents_document(*consents: dict) -> list[dict]:
    return schemas.load(schemas.CreateCustomerConsentList(), {"Consents": list(consents)})["Consents"]


def alternate_ids(*pairs: tuple[str, str]) -> list[dict]:
    return [{"AlternateIdType": kind, "AlternateId": ident} for kind, ident in pairs]


def emails(*addresses: str) -> list[dict]:
    return [{"EmailAddress": address} for address in addresses]


@pytest.fixture
def service() -> ProfileService:
    return ProfileService(MemoryStore(), Accounts({}), History(100))


@pytest.fixture
def ann(service: ProfileService) -> dict:
    """A profile of acme holding the AlternateId crm/C-1, with two emails and a consent."""
    profile = service.create(
        "acme",
        create_document(
            CustomerName={"FirstName": "Ann", "LastName": "Smith"},
            AlternateIds=alternate_ids(("crm", "C-1")),
            Emails=[{"EmailAddress": "ann@example.com", "IsDefault": True}, {"EmailAddress": "ann@work.com"}],
            PhoneNumbers=[{"PhoneNumber": "(404) 555-0100"}],
            CustomerType="Prospect",
        ),
        CREATOR,
    )
    service.add_consents(
        "acme",
        profile["ProfileId"],
        consents_document(
            {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 1}
        ),
        CREATOR,
    )
    return service.get("acme", profile["ProfileId"])


def exported(service: ProfileService) -> dict[str, list[dict]]:
    """What the service exports, read whole."""
    return {client_id: list(profiles) for client_id, profiles in service.export().items()}


def ids(profiles: list[dict]) -> list[int]:
    return [profile["ProfileId"] for profile in profiles]


# --- create and get ---------------------------------------------------------------------------


def test_create_assigns_increasing_profile_ids_across_clients(service):
    created = [service.create(client, create_document(), CREATOR) for client in ("acme", "beta", "acme")]

    assert ids(created) == [1, 2, 3]
    assert ids(service.profiles("acme")) == [1, 3]
    assert ids(service.profiles("beta")) == [2]


def test_create_generates_the_server_fields(service):
    profile = service.create(
        "acme",
        create_document(
            Addresses=[
                {
                    "Address1": " 1  Main st ",
                    "City": "Atlanta",
                    "StateProvince": "ga",
                    "PostalCode": "30301",
                    "CountryCode_Alpha2": "US",
                }
            ],
            Emails=emails("ann@example.com"),
            PhoneNumbers=[{"PhoneNumber": "+1 (404) 555-0100"}],
        ),
        CREATOR,
    )

    assert profile["Edited"] == CREATED
    assert profile["Addresses"] == [
        {
            "AddressType": None, "IsDefault": False, "IsActive": True, "Country": "United States",
            "Address1": " 1  Main st ", "Address2": None, "City": "Atlanta", "StateProvince": "ga",
            "CountryCode_Numeric": "840", "CountryCode_Alpha2": "US", "CountryCode_Alpha3": "USA",
            "PostalCode": "30301", "CassAddress1": "1 MAIN ST", "CassAddress2": None, "CassCity": "ATLANTA",
            "CassStateProvince": "GA", "CassPostalCode": "30301", "CassStatus": "Y", "AddressPreferences": [],
        }
    ]  # fmt: skip
    assert profile["PhoneNumbers"][0]["PhoneNumberNumeric"] == 14045550100
    assert profile["Emails"] == [
        {
            "EmailAddressType": None, "EmailAddress": "ann@example.com", "IsDefault": False, "IsActive": True,
            "EmailPreferences": [],
        }
    ]  # fmt: skip
    assert (profile["IsActive"], profile["CustomerType"], profile["DefaultLocale"], profile["Consents"]) == (
        True,
        "Customer",
        "en_US",
        [],
    )
    assert service.get("acme", profile["ProfileId"]) == profile


def test_create_with_a_taken_alternate_id_is_409_ignoring_case_and_stores_nothing(service, ann):
    document = create_document(AlternateIds=alternate_ids(("web", "W-1"), ("CRM", "c-1")))

    with pytest.raises(Conflict) as raised:
        service.create("acme", document, CREATOR)

    assert raised.value.status == 409
    assert (
        raised.value.message == "A profile with AlternateIdType 'CRM' and AlternateId 'c-1' already exists."
    )
    assert raised.value.conflict == {
        "AlternateIdType": "CRM",
        "AlternateId": "c-1",
        "heldBy": ann["ProfileId"],
    }
    assert service.profiles("acme") == [ann]
    with pytest.raises(NotFound):
        service.get("acme", AlternateId("web", "W-1"))
    assert service.create("acme", create_document(), CREATOR)["ProfileId"] == ann["ProfileId"] + 1


def test_the_same_alternate_id_under_another_client_is_no_conflict(service, ann):
    other = service.create("beta", create_document(AlternateIds=alternate_ids(("crm", "C-1"))), CREATOR)

    assert service.get("beta", CRM) == other
    assert service.get("acme", CRM) == ann


@pytest.mark.parametrize(
    "target",
    [CRM, AlternateId("CRM", "c-1"), AlternateId("Crm", "C-1")],
    ids=["as-stored", "other-case", "mixed-case"],
)
def test_get_by_alternate_id_ignores_case(service, ann, target):
    assert service.get("acme", target) == ann


@pytest.mark.parametrize(
    ("client", "target"),
    [("acme", 99), ("beta", 1), ("acme", AlternateId("crm", "C-2")), ("acme", AlternateId("erp", "C-1"))],
    ids=["unknown-id", "other-clients-id", "unknown-alternate-id", "other-type"],
)
def test_get_of_an_unknown_profile_is_404(service, ann, client, target):
    with pytest.raises(NotFound) as raised:
        service.get(client, target)

    assert raised.value.status == 404


def test_an_inactive_profile_drops_out_of_alternate_id_lookups_only(service, ann):
    service.deactivate("acme", ann["ProfileId"], None, CHANGER)

    with pytest.raises(NotFound):
        service.get("acme", CRM)
    assert service.get("acme", ann["ProfileId"])["IsActive"] is False


def test_a_profile_created_inactive_is_not_found_by_alternate_id(service):
    created = service.create(
        "acme", create_document(IsActive=False, AlternateIds=alternate_ids(("crm", "C-1"))), CREATOR
    )

    with pytest.raises(NotFound):
        service.get("acme", CRM)
    assert service.get("acme", created["ProfileId"]) == created


# --- upsert -----------------------------------------------------------------------------------


def test_upsert_creates_a_profile_holding_the_alternate_id_then_merges(service):
    first, created = service.upsert(
        "acme",
        CRM,
        create_document(CustomerName={"FirstName": "Ann"}, Emails=emails("ann@example.com")),
        CREATOR,
    )
    second, created_again = service.upsert(
        "acme",
        AlternateId("CRM", "c-1"),
        create_document(CustomerName={"LastName": "Smith"}, Emails=emails("a2@example.com")),
        CHANGER,
    )

    assert (created, created_again) == (True, False)
    assert first["AlternateIds"] == alternate_ids(("crm", "C-1"))
    assert first["Edited"] == CREATED
    assert second["ProfileId"] == first["ProfileId"]
    assert second["AlternateIds"] == alternate_ids(("crm", "C-1"))
    assert (second["CustomerName"]["FirstName"], second["CustomerName"]["LastName"]) == ("Ann", "Smith")
    assert [e["EmailAddress"] for e in second["Emails"]] == ["ann@example.com", "a2@example.com"]
    assert second["Edited"] == CHANGED
    assert service.profiles("acme") == [second]


def test_upsert_keeps_the_documents_own_alternate_ids_and_adds_the_addressed_one(service):
    profile, created = service.upsert(
        "acme", CRM, create_document(AlternateIds=alternate_ids(("web", "W-1"))), CREATOR
    )

    assert created is True
    assert profile["AlternateIds"] == alternate_ids(("web", "W-1"), ("crm", "C-1"))


def test_upsert_does_not_add_the_addressed_alternate_id_twice(service):
    profile, _ = service.upsert(
        "acme", CRM, create_document(AlternateIds=alternate_ids(("CRM", "c-1"))), CREATOR
    )

    assert profile["AlternateIds"] == alternate_ids(("CRM", "c-1"))


def test_upsert_on_an_alternate_id_a_deactivated_profile_holds_is_409(service, ann):
    service.deactivate("acme", ann["ProfileId"], None, CHANGER)

    with pytest.raises(Conflict):
        service.upsert("acme", CRM, create_document(), CHANGER)
    assert ids(service.profiles("acme")) == [ann["ProfileId"]]


# --- replace ----------------------------------------------------------------------------------


def test_replace_by_id_blanks_omitted_fields_and_keeps_creation_and_consents(service, ann):
    replaced = service.replace(
        "acme", ann["ProfileId"], create_document(Emails=emails("new@example.com")), CHANGER
    )

    assert replaced["ProfileId"] == ann["ProfileId"]
    assert replaced["Edited"] == CHANGED
    assert replaced["Consents"] == ann["Consents"]
    assert len(replaced["Consents"]) == 1
    assert [e["EmailAddress"] for e in replaced["Emails"]] == ["new@example.com"]
    assert replaced["AlternateIds"] == []
    assert replaced["PhoneNumbers"] == []
    assert replaced["CustomerName"] == dict.fromkeys(
        ("FirstName", "MiddleName", "LastName", "Prefix", "Suffix")
    )
    assert replaced["CustomerType"] == "Customer"
    assert service.get("acme", ann["ProfileId"]) == replaced


def test_replace_by_id_frees_the_alternate_ids_it_drops(service, ann):
    service.replace("acme", ann["ProfileId"], create_document(), CHANGER)

    other = service.create("acme", create_document(AlternateIds=alternate_ids(("crm", "C-1"))), CREATOR)

    assert service.get("acme", CRM)["ProfileId"] == other["ProfileId"]


def test_replace_by_alternate_id_blanks_what_it_omits_the_addressing_alternate_id_too(service, ann):
    replaced = service.replace(
        "acme",
        AlternateId("CRM", "c-1"),
        create_document(AlternateIds=alternate_ids(("web", "W-1"))),
        CHANGER,
    )

    assert replaced["ProfileId"] == ann["ProfileId"]
    assert replaced["AlternateIds"] == alternate_ids(("web", "W-1"))
    assert service.get("acme", AlternateId("web", "W-1"))["ProfileId"] == ann["ProfileId"]
    with pytest.raises(NotFound):
        service.get("acme", CRM)


def test_replace_taking_another_profiles_alternate_id_is_409_and_changes_nothing(service, ann):
    other = service.create("acme", create_document(AlternateIds=alternate_ids(("web", "W-1"))), CREATOR)

    with pytest.raises(Conflict):
        service.replace(
            "acme", other["ProfileId"], create_document(AlternateIds=alternate_ids(("crm", "c-1"))), CHANGER
        )

    assert service.profiles("acme") == [ann, other]


def test_replace_keeps_a_deactivated_profile_inactive_with_its_reason(service, ann):
    service.deactivate("acme", ann["ProfileId"], "moved", CHANGER)

    replaced = service.replace("acme", ann["ProfileId"], create_document(), CHANGER)

    assert (replaced["IsActive"], replaced["ReasonCode"]) == (False, "moved")


# --- merge ------------------------------------------------------------------------------------


def test_merge_keeps_unmentioned_entries_and_updates_matching_ones(service, ann):
    merged = service.merge(
        "acme",
        ann["ProfileId"],
        create_document(
            Emails=[
                {"EmailAddress": "ANN@WORK.COM", "EmailAddressType": "work"},
                {"EmailAddress": "new@example.com"},
            ],
            CustomerName={"MiddleName": "B"},
        ),
        CHANGER,
    )

    assert [(e["EmailAddress"], e["EmailAddressType"], e["IsDefault"]) for e in merged["Emails"]] == [
        ("ann@example.com", None, True),
        ("ANN@WORK.COM", "work", False),
        ("new@example.com", None, False),
    ]
    assert merged["CustomerName"] == {
        "FirstName": "Ann",
        "MiddleName": "B",
        "LastName": "Smith",
        "Prefix": None,
        "Suffix": None,
    }
    assert (merged["AlternateIds"], merged["PhoneNumbers"][0]["PhoneNumber"], merged["CustomerType"]) == (
        ann["AlternateIds"],
        "(404) 555-0100",
        "Prospect",
    )
    assert merged["Consents"] == ann["Consents"]
    assert merged["Edited"] == CHANGED


def test_merge_by_alternate_id(service, ann):
    merged = service.merge("acme", AlternateId("CRM", "C-1"), create_document(CustomerType="Member"), CHANGER)

    assert (merged["ProfileId"], merged["CustomerType"], merged["Emails"]) == (
        ann["ProfileId"],
        "Member",
        ann["Emails"],
    )


def test_a_merge_leaving_two_default_emails_is_400_and_changes_nothing(service, ann):
    with pytest.raises(BadRequest) as raised:
        service.merge(
            "acme",
            ann["ProfileId"],
            create_document(Emails=[{"EmailAddress": "ann@work.com", "IsDefault": True}]),
            CHANGER,
        )

    assert raised.value.model_state == {
        "Emails": ["Only one email can be the default; 2 have IsDefault true."]
    }
    assert service.profiles("acme") == [ann]


# --- patch ------------------------------------------------------------------------------------


def test_patch_with_add_replace_remove_and_test(service, ann):
    operations = [
        {"op": "test", "path": "/CustomerName/FirstName", "value": "Ann"},
        {"op": "replace", "path": "/CustomerName/FirstName", "value": "Anne"},
        {"op": "add", "path": "/Emails/-", "value": {"EmailAddress": "third@example.com"}},
        {"op": "remove", "path": "/Emails/1"},
        {"op": "remove", "path": "/PhoneNumbers/0"},
        {"op": "replace", "path": "/IsActive", "value": False},
    ]

    patched = service.patch("acme", ann["ProfileId"], operations, CHANGER)

    assert patched["CustomerName"]["FirstName"] == "Anne"
    assert [e["EmailAddress"] for e in patched["Emails"]] == ["ann@example.com", "third@example.com"]
    assert patched["PhoneNumbers"] == []
    assert (patched["IsActive"], patched["ReasonCode"]) == (False, None)
    assert (patched["Consents"], patched["Edited"]) == (ann["Consents"], CHANGED)
    assert service.get("acme", ann["ProfileId"]) == patched


def test_patch_by_alternate_id(service, ann):
    patched = service.patch("acme", CRM, [{"op": "add", "path": "/CustomerType", "value": "Member"}], CHANGER)

    assert (patched["ProfileId"], patched["CustomerType"]) == (ann["ProfileId"], "Member")


@pytest.mark.parametrize(
    ("operations", "key"),
    [
        ([{"op": "replace", "path": "/CustomerType", "value": "X"},
          {"op": "test", "path": "/CustomerName/FirstName", "value": "Bob"}], "Operations[1]"),
        ([{"op": "remove", "path": "/Emails/5"}], "Operations[0]"),
        ([{"op": "replace", "path": "/Emails/0/EmailAddress", "value": ""}], "Emails[0].EmailAddress"),
    ],
    ids=["failed-test", "bad-index", "invalid-result"],
)  # fmt: skip
def test_a_rejected_patch_is_400_and_changes_nothing(service, ann, operations, key):
    with pytest.raises(BadRequest) as raised:
        service.patch("acme", ann["ProfileId"], operations, CHANGER)

    assert list(raised.value.model_state) == [key]
    assert service.profiles("acme") == [ann]


def test_a_failed_test_names_the_operation_and_path(service, ann):
    operations = [{"op": "test", "path": "/CustomerName/FirstName", "value": "Bob"}]

    with pytest.raises(BadRequest) as raised:
        service.patch("acme", ann["ProfileId"], operations, CHANGER)

    assert raised.value.model_state == {"Operations[0]": ["The test at '/CustomerName/FirstName' failed."]}


# --- activate, deactivate, delete -------------------------------------------------------------


def test_deactivate_with_a_reason_then_activate(service, ann):
    deactivated = service.deactivate("acme", CRM, "customer request", CHANGER)
    later = Editor(ACCOUNT, "third", datetime(2026, 3, 1, tzinfo=UTC))
    activated = service.activate("acme", ann["ProfileId"], later)

    assert (deactivated["IsActive"], deactivated["ReasonCode"], deactivated["Edited"]) == (
        False,
        "customer request",
        CHANGED,
    )
    assert (activated["IsActive"], activated["ReasonCode"]) == (True, None)
    assert activated["Edited"] == {
        **CREATED,
        "ModifiedDate": "2026-03-01T00:00:00.000Z",
        "ModifiedBy": "third",
    }
    assert service.get("acme", CRM) == activated
    assert {key: value for key, value in activated.items() if key != "Edited"} == {
        key: value for key, value in ann.items() if key != "Edited"
    }


def test_deactivate_without_a_reason(service, ann):
    assert service.deactivate("acme", ann["ProfileId"], None, CHANGER)["ReasonCode"] is None


def test_a_deactivated_profile_is_absent_from_every_search(service, ann):
    service.deactivate("acme", ann["ProfileId"], "gone", CHANGER)

    assert service.search("acme", Search(email="ann@example.com"), 50) == []
    assert service.search("acme", Search(phone="4045550100"), 50) == []
    assert service.search("acme", Search(names={"FirstName": "Ann"}), 50) == []
    service.activate("acme", ann["ProfileId"], CHANGER)
    assert ids(service.search("acme", Search(email="ann@example.com"), 50)) == [ann["ProfileId"]]


def test_delete_frees_the_alternate_ids_at_once(service, ann):
    service.delete("acme", ann["ProfileId"])

    with pytest.raises(NotFound):
        service.get("acme", ann["ProfileId"])
    assert service.search("acme", Search(email="ann@example.com"), 50) == []
    again = service.create("acme", create_document(AlternateIds=alternate_ids(("CRM", "C-1"))), CREATOR)
    assert service.get("acme", CRM) == again
    assert ids(service.profiles("acme")) == [again["ProfileId"]]


def test_delete_of_an_unknown_profile_is_404(service, ann):
    with pytest.raises(NotFound):
        service.delete("beta", ann["ProfileId"])
    assert service.profiles("acme") == [ann]


# --- consents ---------------------------------------------------------------------------------


def stored_consent(kind: str, version: str, locale: str, status: int, date: str, edited: dict) -> dict:
    return {
        "ConsentType": kind,
        "Locale": locale,
        "ConsentStatus": status,
        "ConsentVersion": version,
        "Expired": False,
        "ExpirationDate": None,
        "ConsentDate": date,
        "Edited": edited,
    }


def test_add_consents_records_each_with_its_own_edited(service, ann):
    changed = service.add_consents(
        "acme",
        CRM,
        consents_document(
            {
                "ConsentType": "sms",
                "ConsentVersion": "2",
                "Locale": "fr_CA",
                "ConsentStatus": "Denied",
                "ConsentDate": "2025-12-31T20:00:00-05:00",
            },
            {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 3},
        ),
        CHANGER,
    )

    by_changer = {**CHANGED, "CreateDate": "2026-02-01T12:30:15.250Z", "CreatedBy": "changer"}
    assert changed["Consents"] == [
        stored_consent("email", "1", "en_US", 1, "2026-01-01T09:00:00.000Z", CREATED),
        stored_consent("sms", "2", "fr_CA", 2, "2026-01-01T01:00:00.000Z", by_changer),
        stored_consent("email", "1", "en_US", 3, "2026-02-01T12:30:15.250Z", by_changer),
    ]
    assert changed["Edited"] == CHANGED
    assert service.get("acme", ann["ProfileId"]) == changed


# --- search -----------------------------------------------------------------------------------


def person(first: str, last: str, addresses: list[str], phone: str, custom: tuple[str, str | None]) -> dict:
    return create_document(
        CustomerName={"FirstName": first, "LastName": last},
        Emails=emails(*addresses),
        PhoneNumbers=[{"PhoneNumber": phone}],
        CustomFields=[{"Name": custom[0], "Value": custom[1]}],
    )


@pytest.fixture
def people(service: ProfileService) -> dict[str, int]:
    """Four acme profiles and one of beta, by first name: their ProfileIds."""
    documents = {
        "Ann": person("Ann", "Smith", ["ann@example.com"], "404-555-0100", ("Tier", "Gold")),
        "Bob": person("Bob", "Smithers", ["BOB@example.com", "shared@example.com"], "(404) 555 0100", ("tier", "silver")),
        "Cy": person("Cy", "Jones", ["Shared@Example.com"], "555-0199", ("Region", None)),
        "Dee": create_document(CustomerName={"FirstName": "Dee"}),
    }  # fmt: skip
    people = {
        name: service.create("acme", document, CREATOR)["ProfileId"] for name, document in documents.items()
    }
    service.create("beta", documents["Ann"], CREATOR)
    return people


def describe(criteria: Search) -> str:
    """A test id: the criteria a search gives."""
    given = {"email": criteria.email, "phone": criteria.phone, **criteria.names}
    fields = [f"{name}={value}" for name, value in given.items() if value is not None]
    return "-".join(fields + [f"{name}={value}" for name, value in criteria.custom_fields])


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (Search(email="ann@example.com"), ["Ann"]),
        (Search(email="ANN@EXAMPLE.COM"), ["Ann"]),
        (Search(email="bob@example.com"), ["Bob"]),
        (Search(email="shared@example.com"), ["Bob", "Cy"]),
        (Search(email="nobody@example.com"), []),
        (Search(email="ann@"), []),
        (Search(phone="4045550100"), ["Ann", "Bob"]),
        (Search(phone="5550199"), ["Cy"]),
        (Search(phone="404"), []),
        (Search(names={"LastName": "smith"}), ["Ann", "Bob"]),
        (Search(names={"LastName": "SMITHERS"}), ["Bob"]),
        (Search(names={"FirstName": "n", "LastName": "mi"}), ["Ann"]),
        (Search(names={"FirstName": "e"}), ["Dee"]),
        (Search(names={"LastName": "o"}), ["Cy"]),
        (Search(names={"MiddleName": "x"}), []),
        (Search(custom_fields=(("Tier", None),)), ["Ann", "Bob"]),
        (Search(custom_fields=(("TIER", "gold"),)), ["Ann"]),
        (Search(custom_fields=(("tier", "Silver"),)), ["Bob"]),
        (Search(custom_fields=(("Tier", "Bronze"),)), []),
        (Search(custom_fields=(("Region", None),)), ["Cy"]),
        (Search(custom_fields=(("Tier", None), ("Region", None))), []),
    ],
    ids=lambda value: describe(value) if isinstance(value, Search) else "+".join(value) or "none",
)
def test_searches(service, people, criteria, expected):
    found = service.search("acme", criteria, 50)

    assert ids(found) == [people[name] for name in expected]


def test_a_search_answers_whole_stored_profiles_of_its_client_only(service, people):
    [found] = service.search("acme", Search(email="ann@example.com"), 50)

    assert found == service.get("acme", people["Ann"])
    assert len(service.search("beta", Search(email="ann@example.com"), 50)) == 1
    assert service.search("gamma", Search(email="ann@example.com"), 50) == []


@pytest.mark.parametrize(
    "criteria",
    [
        Search(phone="4045550100"),
        Search(names={"LastName": "Smith"}),
        Search(custom_fields=(("Tier", None),)),
    ],
    ids=["phone", "names", "custom-fields"],
)
def test_a_search_past_its_limit_is_403_and_at_it_is_not(service, people, criteria):
    assert len(service.search("acme", criteria, 2)) == 2

    with pytest.raises(Forbidden) as raised:
        service.search("acme", criteria, 1)

    assert (raised.value.status, raised.value.message) == (
        403,
        "The search matches more than 1 profiles; narrow it.",
    )


# --- import_state -----------------------------------------------------------------------------


def editor_for(client_id: str) -> Editor:
    return Editor(Account("Member" if client_id == "beta" else "Customer", "en_US"), "importer", CHANGED_AT)


def test_import_replaces_a_clients_profiles_and_counts_them(service, ann):
    kept = service.create("gamma", create_document(), CREATOR)

    counts = service.import_state(
        {
            "acme": [
                {
                    "ProfileId": 40,
                    "Emails": emails("one@example.com"),
                    "AlternateIds": alternate_ids(("crm", "C-1")),
                },
                {
                    "IsActive": False,
                    "ReasonCode": "moved",
                    "Consents": [
                        {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 2}
                    ],
                },
            ],
            "beta": [],
        },
        editor_for,
    )

    assert counts == {"acme": 2, "beta": 0}
    first, second = service.profiles("acme")
    assert (first["ProfileId"], second["ProfileId"]) == (40, 41)
    assert first["Edited"] == dict.fromkeys(("CreateDate", "ModifiedDate"), "2026-02-01T12:30:15.250Z") | {
        "CreatedBy": "importer",
        "ModifiedBy": "importer",
    }
    assert (second["IsActive"], second["ReasonCode"], second["Consents"][0]["ConsentStatus"]) == (
        False,
        "moved",
        2,
    )
    assert service.get("acme", CRM)["ProfileId"] == 40
    assert ids(service.search("acme", Search(email="ann@example.com"), 50)) == []
    with pytest.raises(NotFound):
        service.get("acme", ann["ProfileId"])
    assert service.profiles("gamma") == [kept]
    assert service.profiles("beta") == []
    assert service.create("acme", create_document(), CREATOR)["ProfileId"] == 42


def test_import_applies_each_clients_account_defaults(service):
    service.import_state({"acme": [{}], "beta": [{}]}, editor_for)

    assert [service.profiles(client)[0]["CustomerType"] for client in ("acme", "beta")] == [
        "Customer",
        "Member",
    ]


def test_an_invalid_state_document_is_400_naming_every_problem_and_changes_nothing(service, ann):
    before = exported(service)

    with pytest.raises(BadRequest) as raised:
        service.import_state(
            {
                "acme": [
                    {"Emails": [{"EmailAddress": ""}]},
                    {
                        "ProfileId": 0,
                        "Emails": [
                            {"EmailAddress": "a@example.com", "IsDefault": True},
                            {"EmailAddress": "b@example.com", "IsDefault": True},
                        ],
                    },
                    {},
                ],
                "beta": ["not a profile"],
            },
            editor_for,
        )

    assert raised.value.message == "The state document is invalid."
    assert raised.value.model_state == {
        "clients.acme[0].Emails[0].EmailAddress": ["The EmailAddress field is required."],
        "clients.acme[1].ProfileId": ["A ProfileId is from 1 to 9223372036854775807 (a .NET long)."],
        "clients.acme[1].Emails": ["Only one email can be the default; 2 have IsDefault true."],
        "clients.beta[0]": ["Expected an object: a JSON object, or an XML element with child elements."],
    }
    assert exported(service) == before
    assert service.create("acme", create_document(), CREATOR)["ProfileId"] == ann["ProfileId"] + 1


def test_an_alternate_id_twice_in_one_client_is_409_and_changes_nothing(service, ann):
    before = exported(service)

    with pytest.raises(Conflict) as raised:
        service.import_state(
            {
                "beta": [{}],
                "acme": [
                    {"AlternateIds": alternate_ids(("web", "W-9"))},
                    {"AlternateIds": alternate_ids(("WEB", "w-9"))},
                ],
            },
            editor_for,
        )

    assert (
        raised.value.message == "A profile with AlternateIdType 'WEB' and AlternateId 'w-9' already exists."
    )
    assert exported(service) == before
    assert service.get("acme", CRM) == ann
    assert service.create("acme", create_document(), CREATOR)["ProfileId"] == ann["ProfileId"] + 1


def test_the_same_alternate_id_in_two_clients_of_one_document_is_no_conflict(service):
    pair = alternate_ids(("web", "W-9"))

    counts = service.import_state(
        {"acme": [{"AlternateIds": pair}], "beta": [{"AlternateIds": pair}]}, editor_for
    )

    assert counts == {"acme": 1, "beta": 1}
    assert [service.get(client, AlternateId("web", "W-9"))["ProfileId"] for client in ("acme", "beta")] == [
        1,
        2,
    ]


def test_a_profile_id_held_by_another_client_is_409_and_changes_nothing(service, ann):
    before = exported(service)

    with pytest.raises(Conflict) as raised:
        service.import_state({"beta": [{"ProfileId": ann["ProfileId"]}]}, editor_for)

    assert raised.value.message == f"ProfileId {ann['ProfileId']} is used twice."
    assert exported(service) == before


def test_export_then_import_round_trips(service, ann):
    service.deactivate("acme", ann["ProfileId"], "moved", CHANGER)
    document = exported(service)

    fresh = ProfileService(MemoryStore(), Accounts({}), History(100))
    assert fresh.import_state(document, editor_for) == {"acme": 1}

    assert exported(fresh) == document


# --- imports: searches stay ordered, partial Edited records are completed ------------------


@pytest.mark.parametrize(
    "criteria",
    [
        pytest.param(Search(email="s@example.com"), id="email"),
        pytest.param(Search(phone="4045550100"), id="phone"),
        pytest.param(Search(names={"LastName": "smith"}), id="names"),
        pytest.param(Search(custom_fields=(("Tier", None),)), id="custom-fields"),
    ],
)
def test_every_search_answers_by_profile_id_after_an_import_out_of_order(service, criteria):
    def imported(profile_id: int) -> dict:
        return {
            "ProfileId": profile_id,
            "CustomerName": {"LastName": "Smith"},
            "Emails": emails("s@example.com"),
            "PhoneNumbers": [{"PhoneNumber": "404-555-0100"}],
            "CustomFields": [{"Name": "Tier", "Value": "Gold"}],
        }

    service.import_state({"acme": [imported(50), imported(10)]}, editor_for)

    assert ids(service.search("acme", criteria, 50)) == [10, 50]


def test_an_imported_consents_partial_edited_is_completed_like_the_profiles(service):
    partial = {"CreatedBy": "crm-sync", "ModifiedDate": None}
    consent = {"ConsentType": "email", "ConsentVersion": "1", "Locale": "en_US", "ConsentStatus": 1}

    service.import_state(
        {"acme": [{"Edited": partial, "Consents": [{**consent, "Edited": partial}]}]}, editor_for
    )

    [profile] = service.profiles("acme")
    completed = {
        "CreateDate": "2026-02-01T12:30:15.250Z",
        "CreatedBy": "crm-sync",
        "ModifiedDate": "2026-02-01T12:30:15.250Z",
        "ModifiedBy": "importer",
    }
    assert profile["Edited"] == completed
    assert profile["Consents"][0]["Edited"] == completed


# --- account checks: only what a write introduces ----------------------------------------------


def closed_service() -> ProfileService:
    accounts = Accounts(
        {"acme": {"CustomerTypes": ["Retail"], "EmailTypes": ["Home"], "AlternateIdTypes": ["CRM"]}}
    )
    return ProfileService(MemoryStore(), accounts, History(100))


def test_a_patch_checks_only_the_types_it_introduces():
    service = closed_service()
    editor = Editor(ACCOUNT, "tester", CREATED_AT)
    # The account's default CustomerType ("Customer") is not configured; it is not the client's doing.
    created = service.create("acme", create_document(Emails=emails("a@example.com")), editor)

    patched = service.patch(
        "acme",
        created["ProfileId"],
        [{"op": "replace", "path": "/CustomerName/FirstName", "value": "Zed"}],
        editor,
    )
    with pytest.raises(NotFound, match="EmailAddressType 'Work'"):
        service.patch(
            "acme",
            created["ProfileId"],
            [
                {
                    "op": "add",
                    "path": "/Emails/-",
                    "value": {"EmailAddress": "b@example.com", "EmailAddressType": "Work"},
                }
            ],
            editor,
        )

    assert patched["CustomerName"]["FirstName"] == "Zed"


def test_an_upsert_of_preferences_checks_the_contact_elements_it_adds_not_those_it_finds():
    service = closed_service()
    editor = Editor(ACCOUNT, "tester", CREATED_AT, [])
    email = {"EmailAddress": "a@example.com", "EmailAddressType": "Home"}
    service.create(
        "acme",
        create_document(Emails=[email], AlternateIds=[{"AlternateIdType": "CRM", "AlternateId": "1"}]),
        editor,
    )
    crm = AlternateId("crm", "1")
    preference = [{"FilterId": "news", "PreferenceType": 1}]

    found = service.upsert_preferences(
        "acme",
        crm,
        {"Emails": [email | {"EmailAddressType": "Work", "EmailPreferences": preference}]},
        editor,
    )
    with pytest.raises(NotFound, match="EmailAddressType 'Work'"):
        service.upsert_preferences(
            "acme",
            crm,
            {
                "Emails": [
                    {
                        "EmailAddress": "new@example.com",
                        "EmailAddressType": "Work",
                        "EmailPreferences": preference,
                    }
                ]
            },
            editor,
        )

    assert [(e["EmailAddressType"], len(e["EmailPreferences"])) for e in found["Emails"]] == [("Home", 1)]
    assert editor.warnings == []


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"ProfilePreferences": [{"FilterId": "a", "PreferenceType": 1}, {"FilterId": "A", "PreferenceType": 2}]},
         "ProfilePreferences[1].FilterId"),
        ({"Emails": [{"EmailAddress": "d@x.com", "EmailPreferences": [{"FilterId": "news", "PreferenceType": 1}]},
                     {"EmailAddress": "D@x.com", "EmailPreferences": [{"FilterId": "NEWS", "PreferenceType": 2}]}]},
         "Emails[1].EmailPreferences[0].FilterId"),
    ],
)  # fmt: skip
def test_one_preference_per_filter_and_contact_element(service, fields, path):
    with pytest.raises(BadRequest) as refused:
        service.create("acme", create_document(**fields), CREATOR)

    assert list(refused.value.model_state) == [path]
    assert service.profiles("acme") == []
