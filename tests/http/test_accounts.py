"""Account configuration over real HTTP: open and closed kinds of types, the vendor's configuration
endpoints, the control plane's, resets and state documents."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import redis
import requests
from helpers import (
    FIXTURES,
    STORES,
    Served,
    find,
    minimal_profile,
    patch,
    post_json,
    send,
    send_xml,
    warnings_of,
    xml_of,
)
from mypreferences_sandbox.contract.errors import NotFound
from mypreferences_sandbox.domain.accounts import KINDS, Accounts, AccountsBase, Kind
from mypreferences_sandbox.domain.accounts import configured as configured_kinds
from mypreferences_sandbox.redis.parts import RedisAccounts
from mypreferences_sandbox.redis.shared import Shared
from mypreferences_sandbox.testing.control_client import ControlClient, ControlError

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


@pytest.mark.parametrize("kind", ["AlternateIdTypes", "AddressTypes"])
@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("%C2%B2", "²"),  # a superscript two: str.isdigit takes it, int() does not
        ("%E2%91%A0", "①"),
        ("%D9%A1", "\u0661"),  # an Arabic-Indic one: int() takes it, .NET does not
        ("99999999999999999999999", "99999999999999999999999"),
        ("2147483648", "2147483648"),  # Int32.MaxValue + 1
        ("1" * 5000, "1" * 5000),  # more digits than int() converts
    ],
    ids=["superscript", "circled", "arabic-indic", "huge", "int32-max-plus-one", "endless"],
)
def test_an_id_that_is_no_int32_of_ascii_digits_is_400(base_url, client_id, kind, sent, read):
    response = send("GET", f"{base_url}/{client_id}/{kind}?Id={sent}")

    assert (response.status_code, response.json()["ModelState"]) == (
        400,
        {"Id": [f"The value '{read}' is not valid for Id."]},
    )


def test_an_id_up_to_int32_max_is_read(base_url, client_id):
    largest = send("GET", f"{base_url}/{client_id}/AlternateIdTypes?Id=2147483647")
    padded = send("GET", f"{base_url}/{client_id}/AlternateIdTypes?Id=%2000%20")

    assert (largest.status_code, padded.status_code) == (404, 200)


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


def test_consent_types_alike_but_for_case_in_one_body_are_409_and_none_is_created(
    base_url, client_id, control
):
    url = f"{base_url}/{client_id}/ConsentTypes"

    twice = send("POST", url, {"ConsentTypes": [{"Name": "sms"}, {"Name": "email"}, {"Name": "SMS"}]})
    once = send("POST", url, {"ConsentTypes": [{"Name": "SMS"}]})

    assert (twice.status_code, twice.json()) == (
        409,
        {"Message": "The ConsentType 'SMS' appears more than once (case ignored)."},
    )
    assert (once.status_code, once.json()["ConsentTypes"]) == (
        201,
        [{"Id": 1, "Name": "SMS", "Description": None}],
    )


def test_consent_types_document_strict_modes_404_for_an_unknown_client_id():
    with Served({"AUTH_MODE": "strict", "AUTH_FILE": str(FIXTURES / "auth.json")}) as served:
        answered = send("POST", f"{served.url}/initech/ConsentTypes", {"ConsentTypes": [{"Name": "sms"}]})
        spec = requests.get(f"{served.url}/_sandbox/openapi.json", timeout=10).json()

    assert (answered.status_code, answered.json()) == (
        404,
        {"Message": "The clientId 'initech' is not valid."},
    )
    responses = spec["paths"]["/{clientId}/ConsentTypes"]["post"]["responses"]
    assert responses["404"]["description"] == "Strict mode: an unknown clientId."


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


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        ({"Tags": "VIP"}, {"body": ["Tags must be a list of names or of {Name, Description, Locales}"]}),
        (
            {"AlternateIdTypes": [{"Name": "A", "Description": ["x", {"y": 1}]}]},
            {"body": ["AlternateIdTypes 'A': Description must be a string or null, not ['x', {'y': 1}]"]},
        ),
        (
            {"AlternateIdTypes": [{"Name": "A", "Locales": {"fr": {"Name": 5}}}]},
            {
                "body": [
                    "AlternateIdTypes 'A': Locales maps a locale to its {Name, Description} (strings), "
                    "not {'fr': {'Name': 5}}"
                ]
            },
        ),
        (
            {"DefaultLocale": 5, "Bogus": [1], "Tags": ["VIP"]},
            {
                key: [f"'{key}' is not a kind of types; use one of {', '.join(KINDS)}."]
                for key in ("DefaultLocale", "Bogus")
            },
        ),
    ],
    ids=["not-a-list", "description", "locale-name", "not-kinds"],
)
def test_a_bad_account_document_is_400_naming_each_problem_and_changes_nothing(
    control, client_id, document, problems
):
    with pytest.raises(ControlError) as refused:
        control.configure_account(client_id, document)

    assert (refused.value.status, refused.value.body["ModelState"]) == (400, problems)
    assert control.accounts(client_id) == {"accounts": {}}


def test_the_control_plane_configures_no_account_a_vendor_path_cannot_name(control):
    with pytest.raises(ControlError) as refused:
        control.configure_account("_sandbox", {"Tags": ["VIP"]})

    assert (refused.value.status, refused.value.body["ModelState"]) == (
        400,
        {
            "clientId": [
                "Not a usable clientId: 1 to 260 characters, no '/' or control character, "
                "not '.', '..' or '_sandbox'."
            ]
        },
    )
    assert control.accounts("_sandbox") == {"accounts": {}}


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


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ({"AlternateIdTypes": "CRM"}, "AlternateIdTypes must be a list"),
        ({"AlternateIdTypes": [{"Name": "CRM", "Description": 5}]}, "AlternateIdTypes 'CRM': Description"),
        ({"Tags": [{"Name": "VIP", "Locales": {"fr": {"Description": None}}}]}, "Tags 'VIP': Locales"),
    ],
)
def test_an_unusable_accounts_setting_stops_the_sandbox(kinds, message):
    with pytest.raises(ValueError, match=rf"SANDBOX_ACCOUNTS\.acme: {message}"):
        Served({"ACCOUNTS": {"acme": kinds}})


# --- many types: every look-up by name is O(1) --------------------------------------------------


@pytest.fixture(params=STORES)
def accounts_of(request: pytest.FixtureRequest) -> Iterator[Callable[[Mapping[str, Any]], AccountsBase]]:
    """Accounts of the settings given: in memory, or in Redis (each in a namespace of its own)."""
    if request.param == "memory":
        yield Accounts
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_server").url)
    yield lambda settings: RedisAccounts(Shared(client, namespace=uuid.uuid4().hex), settings)
    client.close()


class Counted(str):
    """A type's name that counts how often it is casefolded: each count is one look at a name,
    whether the name sought or a stored one it is compared with."""

    folds = 0

    def casefold(self) -> str:
        Counted.folds += 1
        return super().casefold()


def folds(work, n: int) -> int:
    """How many names ``work(n)`` casefolds."""
    Counted.folds = 0
    work(n)
    return Counted.folds


def assert_linear(work) -> None:
    """``work`` looks at a bounded number of names per type: twice the types, twice the looks."""
    small, large = folds(work, 1000), folds(work, 2000)

    # Never zero: a count that missed every look would prove nothing.
    assert 1000 <= small <= 10 * 1000
    assert large <= 2.1 * small, (small, large)


def phones(n: int, spell=str) -> dict:
    """A profile document naming ``n`` phone types, each spelled by ``spell``."""
    return {"PhoneNumbers": [{"PhoneType": Counted(spell(f"t{i}")), "PhoneNumber": "1"} for i in range(n)]}


def test_registering_types_in_an_open_kind_is_linear(accounts_of):
    def register(n: int) -> None:
        accounts = accounts_of({})
        assert len(accounts.register("c", accounts.check("c", phones(n)))) == n

    assert_linear(register)


def test_checking_types_an_open_kind_holds_is_linear(accounts_of):
    def check(n: int) -> None:
        accounts = accounts_of({})
        accounts.register("c", accounts.check("c", phones(n)))
        assert accounts.check("c", phones(n, str.upper)) == []

    assert_linear(check)


@pytest.mark.parametrize("spell", [Counted, lambda name: {"Name": Counted(name)}], ids=["names", "entries"])
def test_configuring_types_is_linear(accounts_of, spell):
    def configure(n: int) -> None:
        accounts = accounts_of({})
        accounts.configure("c", {"ConsentTypes": [spell(f"n{i}") for i in range(n)]})
        assert accounts.check("c", {"Consents": [{"ConsentType": Counted(f"N{i}")} for i in range(n)]}) == []

    assert_linear(configure)


def test_creating_consent_types_beside_many_is_linear(accounts_of):
    def create(n: int) -> None:
        accounts = accounts_of({"c": {"ConsentTypes": [Counted(f"old{i}") for i in range(n)]}})
        created = accounts.create("c", "ConsentTypes", [{"Name": Counted(f"new{i}")} for i in range(n)])
        assert [t["Id"] for t in created] == list(range(n + 1, 2 * n + 1))

    assert_linear(create)


def test_names_alike_but_for_case_keep_the_first_spelling_and_place():
    kinds = configured_kinds(
        {
            "Tags": [
                "VIP",
                {"Name": "Straße", "Description": "first"},
                "vip",
                {"Name": "STRASSE", "Description": "second"},
                "Gold",
            ]
        }
    )

    assert [(t["Id"], t["Name"], t["Description"]) for t in kinds["Tags"].types] == [
        (1, "VIP", None),
        (2, "Straße", "first"),
        (3, "Gold", None),
    ]
    assert kinds["Tags"].find("strasse") is kinds["Tags"].types[1]
    assert Kind(types=kinds["Tags"].types).find("gOLD") is kinds["Tags"].types[2]


def test_an_open_kind_registers_names_alike_once_in_the_order_met(accounts_of):
    accounts = accounts_of({})
    spellings = ["Home", "HOME", "Work", "HOME", "home"]
    named = {"PhoneNumbers": [{"PhoneType": name, "PhoneNumber": "1"} for name in spellings]}

    unknown = accounts.check("c", named)
    warnings = accounts.register("c", unknown)

    # Each spelling met is handed on (once); registering keeps the first.
    assert unknown == [("PhoneTypes", name) for name in ["Home", "HOME", "Work", "home"]]
    assert warnings == [
        "registered PhoneType 'Home' in the open account 'c'",
        "registered PhoneType 'Work' in the open account 'c'",
    ]
    assert accounts.register("c", [("PhoneTypes", "WORK")]) == []


def test_types_found_by_name_after_a_reset_are_the_accounts_own(accounts_of):
    accounts = accounts_of({"c": {"AlternateIdTypes": ["CRM"]}})
    accounts.create("c", "AlternateIdTypes", [{"Name": "Web"}])
    accounts.reset("c")

    created = accounts.create("c", "AlternateIdTypes", [{"Name": "Loyalty"}])

    assert created == [{"Id": 2, "Name": "Loyalty", "Description": None}]
    assert (
        accounts.check("c", {"AlternateIds": [{"AlternateIdType": "crm"}, {"AlternateIdType": "LOYALTY"}]})
        == []
    )
    with pytest.raises(NotFound):
        accounts.check("c", {"AlternateIds": [{"AlternateIdType": "web"}]})
    # The settings' own copy learned nothing from the account's changes.
    accounts.reset("c")
    assert [t["Name"] for t in accounts.types("c", "AlternateIdTypes")] == ["CRM"]


def test_a_profile_naming_thousands_of_phone_types_registers_them_all():
    names = [f"t{i}" for i in range(2000)]
    numbers = [{"PhoneType": name, "PhoneNumber": "1"} for name in names]
    shouted = [number | {"PhoneType": number["PhoneType"].upper()} for number in numbers]
    with Served({"MAX_ENTRIES": len(names)}) as served:
        url = f"{served.url}/acme/Profile"

        created = post_json(url, minimal_profile(PhoneNumbers=numbers))
        again = post_json(url, minimal_profile(PhoneNumbers=shouted))
        # No vendor operation lists phone types: the account is read in-process.
        registered = served.app.extensions["sandbox"].accounts.types("acme", "PhoneTypes")

    told = [
        line for line in created.raw.headers.getlist("X-Sandbox-Warning") if line.startswith("registered")
    ]
    assert created.status_code == again.status_code == 201
    assert told == [
        f"registered PhoneType '{name}' in the open account 'acme'" for name in names[: len(told)]
    ]
    assert warnings_of(again) == []  # all known by now, whatever their case
    assert registered == [{"Id": i + 1, "Name": name, "Description": None} for i, name in enumerate(names)]


def test_a_profile_naming_thousands_of_alternate_id_types_lists_them_all():
    names = [f"t{i}" for i in range(2000)]
    with Served({"MAX_ENTRIES": len(names)}) as served:
        created = post_json(
            f"{served.url}/acme/Profile",
            minimal_profile(AlternateIds=[{"AlternateIdType": name, "AlternateId": "1"} for name in names]),
        )
        listed = types(f"{served.url}/acme")

    assert created.status_code == 201
    assert listed == [{"Id": i + 1, "Name": name, "Description": None} for i, name in enumerate(names)]
