"""The clock, journal, preference history, accounts and bearer tokens: each in memory and in Redis alike,
and in Redis one part for every process that shares it."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import mypreferences_sandbox.domain.auth
import mypreferences_sandbox.redis.parts
import pytest
import redis
from helpers import STORES
from mypreferences_sandbox.contract import schemas
from mypreferences_sandbox.contract.errors import Conflict, NotFound, Unauthorized
from mypreferences_sandbox.domain.accounts import Accounts, AccountsBase
from mypreferences_sandbox.domain.auth import Authority, MemoryTokens, Token
from mypreferences_sandbox.domain.clock import Clock, ClockBase
from mypreferences_sandbox.domain.history import History, HistoryBase
from mypreferences_sandbox.domain.journal import Journal, JournalBase, footprint, matcher
from mypreferences_sandbox.domain.profiles import Account, Editor
from mypreferences_sandbox.domain.service import ProfileService
from mypreferences_sandbox.domain.store import MemoryStore
from mypreferences_sandbox.redis.parts import (
    RedisAccounts,
    RedisClock,
    RedisHistory,
    RedisJournal,
    RedisTokens,
)
from mypreferences_sandbox.redis.shared import Shared

T0 = datetime(2030, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)


@pytest.fixture
def place(redis_server) -> Iterator[Shared]:
    """A namespace of the session's Redis of this test's own."""
    client = redis.Redis.from_url(redis_server.url)
    yield Shared(client, namespace=uuid.uuid4().hex)
    client.close()


@pytest.fixture(params=STORES)
def shared(request: pytest.FixtureRequest) -> Shared | None:
    """None for the in-memory parts; for those in Redis, the test's place there."""
    return None if request.param == "memory" else request.getfixturevalue("place")


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


def shared_at(url: str, namespace: str) -> Shared:
    """The place in the Redis at ``url``, as another process reaches it."""
    return Shared(redis.Redis.from_url(url), namespace=namespace)


def clock_of(shared: Shared | None) -> ClockBase:
    return Clock() if shared is None else RedisClock(shared)


def journal_of(shared: Shared | None, size: int = 100, max_bytes: int = 1_000_000) -> JournalBase:
    return Journal(size, max_bytes) if shared is None else RedisJournal(shared, size, max_bytes)


def history_of(shared: Shared | None, limit: int = 100) -> HistoryBase:
    return History(limit) if shared is None else RedisHistory(shared, limit)


def accounts_of(shared: Shared | None, settings: dict) -> AccountsBase:
    return Accounts(settings) if shared is None else RedisAccounts(shared, settings)


def authority_of(shared: Shared | None) -> Authority:
    """A lenient authority, its tokens kept in memory or in Redis."""
    return Authority(
        "lenient",
        {},
        window=timedelta(minutes=15),
        token_lifetime=timedelta(hours=1),
        default_user="sandbox",
        tokens=MemoryTokens() if shared is None else RedisTokens(shared),
    )


# --- the clock ------------------------------------------------------------------------------


def test_a_clock_runs_on_real_time_until_set(shared):
    clock = clock_of(shared)

    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)

    assert before <= now <= after and now.tzinfo is not None
    assert clock.frozen is False


def test_a_set_clock_stays_where_it_was_set_to_the_microsecond(shared):
    clock = clock_of(shared)

    clock.set(T0)
    first, second, frozen = clock.now(), clock.now(), clock.frozen

    assert first == second == T0 and first.utcoffset() == timedelta(0)
    assert frozen is True


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (datetime(2030, 1, 2, 3, 4, 5), datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
    ],
    ids=["zone-less", "other-zone"],
)
def test_a_clock_is_set_in_utc(shared, given, shown):
    clock = clock_of(shared)

    clock.set(given)

    assert (clock.now(), clock.now().utcoffset()) == (shown, timedelta(0))


def test_advancing_moves_a_set_clock_and_freezes_a_running_one(shared):
    clock = clock_of(shared)
    clock.set(T0)
    clock.advance(timedelta(seconds=90))
    moved = clock.now()
    clock.release()

    before = datetime.now(UTC)
    clock.advance(timedelta(days=1))
    frozen_at = clock.now()

    assert moved == T0 + timedelta(seconds=90)
    assert before + timedelta(days=1) <= frozen_at <= datetime.now(UTC) + timedelta(days=1)
    assert clock.now() == frozen_at and clock.frozen


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda clock: clock.set(datetime(9000, 1, 1, 0, 0, 1, tzinfo=UTC)), "outside the clock's range"),
        (lambda clock: clock.set(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))), "outside"),
        (
            lambda clock: clock.advance(timedelta(days=-30_000)),
            "1947-11-14T03:04:05.678Z is outside the clock's range",
        ),
        (lambda clock: clock.advance(timedelta.max), "would leave its range"),
    ],
    ids=["past-9000", "overflow", "before-1970", "advance-overflow"],
)
def test_a_clock_refuses_to_leave_its_range_and_stays(shared, change, message):
    clock = clock_of(shared)
    clock.set(T0)

    with pytest.raises(ValueError, match=message):
        change(clock)

    assert clock.now() == T0


def test_the_clock_edges_are_kept(shared):
    clock = clock_of(shared)

    clock.set(datetime(9000, 1, 1, tzinfo=UTC))
    latest = clock.now()
    clock.set(datetime(1970, 1, 1, tzinfo=UTC))

    assert (latest, clock.now()) == (datetime(9000, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC))


def test_a_client_reset_leaves_the_clock_and_a_full_one_releases_it(shared):
    clock = clock_of(shared)
    clock.set(T0)

    clock.reset("acme", seed=3)
    kept = (clock.frozen, clock.now())
    clock.reset(seed=3)

    assert kept == (True, T0)
    assert clock.frozen is False


# --- the journal ----------------------------------------------------------------------------


def entry(client_id: str | None, index: int, **more: Any) -> dict:
    """A journal entry as the pipeline builds one."""
    moment = T0 + timedelta(seconds=index)
    return {
        "moment": moment,
        "time": moment.isoformat(),
        "method": "GET" if index % 2 else "POST",
        "path": f"/{client_id}/Profile/{index}",
        "clientId": client_id,
        "query": {"q": ["1", "2"]},
        "headers": {"Host": "x", "Authorization": "Bearer [redacted]"},
        "body": "é" * (index % 5 * 10),
        "bodyTruncated": False,
        "status": 200 + index,
        "durationMs": 1.5 * index,
        **more,
    }


MORE = [
    {},
    {"warnings": ["ignored unknown field 'x'"], "cut": {"headers": 3}},
    {"profileId": 123, "error": {"Message": "no", "ModelState": {"a": ["b"]}}, "status": None},
    {"fault": {"id": "f-1", "when": "before", "hits": 1, "remaining": None}, "conflict": {"heldBy": 9}},
]


def test_journal_entries_come_back_as_they_were_recorded_numbered_oldest_first(shared):
    journal = journal_of(shared)
    recorded = [entry(["a", "b", None][index % 3], index, **MORE[index % 4]) for index in range(12)]

    for each in recorded:
        journal.record(each)
    entries = journal.entries()

    assert entries == [{"id": index + 1, **each} for index, each in enumerate(recorded)]
    assert [list(e) for e in entries] == [["id", *each] for each in recorded]
    assert entries[0]["moment"] == T0 and entries[0]["moment"].utcoffset() == timedelta(0)
    assert journal.held_bytes == sum(footprint(each) for each in recorded)


def test_journal_entries_are_copies(shared):
    journal = journal_of(shared)
    journal.record(entry("a", 1))

    journal.entries()[0]["status"] = 999

    assert journal.entries()[0]["status"] == 201


def test_journal_filters_and_counts(shared):
    journal = journal_of(shared)
    for index in range(10):
        journal.record(entry("a" if index < 6 else "b", index, **MORE[index % 4]))

    chosen = {
        "client": matcher(client_id="b"),
        "method": matcher(method="get", client_id="a"),
        "path": matcher(path="/a/Profile/[13]"),
        "status": matcher(status=203),
        "since": matcher(since=T0 + timedelta(seconds=8)),
        "until": matcher(until=T0 + timedelta(seconds=1)),
        "warning": matcher(warning="*unknown*"),
    }

    assert {name: [e["id"] for e in journal.entries(found)] for name, found in chosen.items()} == {
        "client": [7, 8, 9, 10],
        "method": [2, 4, 6],
        "path": [2, 4],
        "status": [4],
        "since": [9, 10],
        "until": [1, 2],
        "warning": [2, 6, 10],
    }
    assert {name: journal.count(found) for name, found in chosen.items()} == {
        "client": 4,
        "method": 3,
        "path": 2,
        "status": 1,
        "since": 2,
        "until": 2,
        "warning": 3,
    }


def test_the_journal_keeps_the_newest_size_entries(shared):
    journal = journal_of(shared, size=3)

    for index in range(7):
        journal.record(entry("a", index))

    assert [e["id"] for e in journal.entries()] == [5, 6, 7]
    assert journal.held_bytes == sum(footprint(entry("a", index)) for index in (4, 5, 6))


def test_the_journal_keeps_at_most_max_bytes_but_always_the_newest_entry(shared):
    small, big = entry("a", 1), entry("a", 2, body="x" * 5_000)
    limit = 2 * footprint(small) + 10
    journal = journal_of(shared, max_bytes=limit)

    for _ in range(3):
        journal.record(small)
    two = ([e["id"] for e in journal.entries()], journal.held_bytes)
    journal.record(big)
    alone = ([e["id"] for e in journal.entries()], journal.held_bytes)
    journal.record(small)

    assert two == ([2, 3], 2 * footprint(small))
    assert alone == ([4], footprint(big))
    assert ([e["id"] for e in journal.entries()], journal.held_bytes) == ([5], footprint(small))


def test_a_journal_client_reset_forgets_its_entries_only_and_a_full_one_all(shared):
    journal = journal_of(shared, size=5)
    for index in range(8):
        journal.record(entry(["a", "b", None][index % 3], index))

    journal.reset("a")
    after_one = ([(e["id"], e["clientId"]) for e in journal.entries()], journal.held_bytes)
    journal.reset("nobody")
    unchanged = [e["id"] for e in journal.entries()]
    journal.record(entry("c", 9))
    journal.record(entry("c", 10))
    journal.record(entry("c", 11))
    bounded = [e["id"] for e in journal.entries()]
    journal.reset(seed=1)
    emptied = (journal.entries(), journal.held_bytes, journal.count())
    journal.record(entry("a", 1))

    assert after_one == (
        [(5, "b"), (6, None), (8, "b")],
        sum(footprint(entry(c, i)) for c, i in [("b", 4), ("b", 7), (None, 5)]),
    )
    assert unchanged == [5, 6, 8]
    assert bounded == [6, 8, 9, 10, 11]
    assert emptied == ([], 0, 0)
    assert [e["id"] for e in journal.entries()] == [12]  # the ids go on after a reset


@pytest.mark.parametrize("gone", ["a b", "a\nb", "\u2603", '"a"', "null"])
def test_a_journal_client_reset_matches_the_client_id_exactly(shared, gone):
    journal = journal_of(shared)
    clients = ["a", "a b", "a\nb", "\u2603", '"a"', "null", None]
    for index, client in enumerate(clients):
        journal.record(entry(client, index))

    journal.reset(gone)

    assert [e["clientId"] for e in journal.entries()] == [client for client in clients if client != gone]
    assert journal.held_bytes == sum(footprint(entry(c, i)) for i, c in enumerate(clients) if c != gone)


# --- the preference history -----------------------------------------------------------------

EDITOR = Editor(Account("Customer", "en_US"), "tester", T0)


def preferences(*pairs: tuple[str, int]) -> list[dict]:
    return [{"FilterId": name, "PreferenceType": kind} for name, kind in pairs]


def profile_document(**fields: Any) -> dict:
    return schemas.load(schemas.CreateUserProfile(), fields)


def write_history(service: ProfileService, client_id: str) -> int:
    """A profile's preferences set, changed and archived, one minute apart; its ProfileId."""

    def at(minutes: int) -> Editor:
        return Editor(EDITOR.account, EDITOR.user, T0 + timedelta(minutes=minutes))

    created = service.create(
        client_id,
        profile_document(
            ProfilePreferences=preferences(("news", 1), ("promo", 2)),
            Emails=[{"EmailAddress": "a@x.com", "EmailPreferences": preferences(("News", 1))}],
        ),
        at(0),
    )
    profile_id = created["ProfileId"]
    service.replace(
        client_id,
        profile_id,
        profile_document(
            ProfilePreferences=preferences(("news", 2)),
            Emails=[{"EmailAddress": "a@x.com", "EmailPreferences": preferences(("News", 1))}],
        ),
        at(1),
    )
    archive = schemas.load(schemas.ArchivePreferences(), {"GlobalDeactivate": True, "Reason_Code": "moved"})
    service.archive_preferences(client_id, profile_id, archive, at(2))
    return profile_id


def test_history_records_each_change_as_in_memory(shared):
    history = history_of(shared)
    service, alone = (
        ProfileService(MemoryStore(), Accounts({}), history),
        ProfileService(MemoryStore(), Accounts({}), History(100)),
    )

    profile_id = write_history(service, "acme")
    write_history(alone, "acme")
    log = history.preferences("acme", profile_id)

    assert log == alone.history.preferences("acme", profile_id)
    assert [(e["FilterId"], e["PreferenceType"], e["PreferenceStatus"]) for e in log] == [
        ("news", 1, "Active"),
        ("promo", 2, "Active"),
        ("News", 1, "Active"),
        ("news", 2, "Active"),
        ("promo", 2, "Archived"),
        ("news", 2, "Archived"),
        ("News", 1, "Archived"),
    ]
    assert log[-1]["ContactElement"] == {"EmailAddress": "a@x.com"}
    assert log[-1]["PreferenceAttributes"] == [{"Key": "$Reason_Code", "Value": "moved"}]
    assert history.preferences("acme", profile_id, "NEWS") == [
        e for e in log if e["FilterId"].casefold() == "news"
    ]
    assert history.preferences("acme", profile_id, "other") == []
    assert history.preferences("acme", profile_id + 1) == history.preferences("globex", profile_id) == []


def test_history_entries_are_copies(shared):
    history = history_of(shared)
    service = ProfileService(MemoryStore(), Accounts({}), history)
    profile_id = write_history(service, "acme")

    history.preferences("acme", profile_id)[0]["FilterId"] = "changed"

    assert history.preferences("acme", profile_id)[0]["FilterId"] == "news"


def test_history_keeps_the_newest_limit_entries_of_each_profile(shared):
    history = history_of(shared, limit=3)
    service = ProfileService(MemoryStore(), Accounts({}), history)

    first, second = write_history(service, "acme"), write_history(service, "acme")
    service.replace(
        "acme",
        second,
        profile_document(ProfilePreferences=preferences(("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1))),
        EDITOR,
    )

    assert [(e["FilterId"], e["PreferenceStatus"]) for e in history.preferences("acme", first)] == [
        ("promo", "Archived"),
        ("news", "Archived"),
        ("News", "Archived"),
    ]
    assert [e["FilterId"] for e in history.preferences("acme", second)] == ["c", "d", "e"]


def test_a_deleted_profile_forgets_its_history_and_only_its_own(shared):
    history = history_of(shared)
    service = ProfileService(MemoryStore(), Accounts({}), history)
    gone, kept = write_history(service, "acme"), write_history(service, "acme")

    service.delete("acme", gone)
    history.forget("acme", 999)
    again = service.create("acme", profile_document(ProfilePreferences=preferences(("x", 1))), EDITOR)

    assert history.preferences("acme", gone) == []
    assert len(history.preferences("acme", kept)) == 7
    assert [e["FilterId"] for e in history.preferences("acme", again["ProfileId"])] == ["x"]


def test_a_history_client_reset_forgets_that_clients_and_a_full_one_all(shared):
    history = history_of(shared)
    service = ProfileService(MemoryStore(), Accounts({}), history)
    ids = {client: write_history(service, client) for client in ("a", "b", "c")}

    history.reset("a")
    after_one = {client: len(history.preferences(client, ids[client])) for client in ids}
    history.reset(seed=5)
    after_all = {client: len(history.preferences(client, ids[client])) for client in ids}
    again = write_history(service, "a")

    assert after_one == {"a": 0, "b": 7, "c": 7}
    assert after_all == {"a": 0, "b": 0, "c": 0}
    assert len(history.preferences("a", again)) == 7


# --- the accounts ---------------------------------------------------------------------------

SETTINGS = {
    "acme": {
        "DefaultLocale": "en_US",
        "AlternateIdTypes": [
            "CRM",
            {"Name": "Loyalty", "Description": "Card", "Locales": {"fr-CA": {"Name": "Fidélité"}}},
        ],
    }
}


def test_account_types_by_id_and_locale(shared):
    accounts = accounts_of(shared, SETTINGS)

    assert accounts.types("acme", "AlternateIdTypes") == [
        {"Id": 1, "Name": "CRM", "Description": None},
        {"Id": 2, "Name": "Loyalty", "Description": "Card"},
    ]
    assert accounts.types("acme", "AlternateIdTypes", type_id=2, locale="FR-ca") == [
        {"Id": 2, "Name": "Fidélité", "Description": "Card"}
    ]
    assert accounts.types("acme", "AlternateIdTypes", locale="en-US") == accounts.types(
        "acme", "AlternateIdTypes"
    )
    assert accounts.types("acme", "PhoneTypes") == accounts.types("globex", "AlternateIdTypes") == []
    with pytest.raises(NotFound, match="No AlternateIdType with Id 3 exists for 'acme'"):
        accounts.types("acme", "AlternateIdTypes", type_id=3)
    with pytest.raises(NotFound, match="No AlternateIdType has the locale 'de-de'"):
        accounts.types("acme", "AlternateIdTypes", locale="de-de")


def test_account_checks_closed_kinds_and_registers_in_open_ones(shared):
    accounts = accounts_of(shared, SETTINGS)
    document = {
        "AlternateIds": [{"AlternateIdType": "crm"}],
        "PhoneNumbers": [{"PhoneType": "Mobile"}, {"PhoneType": "MOBILE"}, {"PhoneType": "Home"}],
        "CustomerType": "Retail",
    }

    unknown = accounts.check("acme", document)
    warnings = accounts.register("acme", unknown)
    with pytest.raises(NotFound) as refused:
        accounts.check("acme", {"AlternateIds": [{"AlternateIdType": "Web"}]})
    held = accounts.check(
        "acme",
        {"AlternateIds": [{"AlternateIdType": "Web"}]},
        held={"AlternateIds": [{"AlternateIdType": "WEB"}]},
    )

    assert unknown == [
        ("PhoneTypes", "Mobile"),
        ("PhoneTypes", "MOBILE"),
        ("PhoneTypes", "Home"),
        ("CustomerTypes", "Retail"),
    ]
    assert warnings == [
        "registered PhoneType 'Mobile' in the open account 'acme'",
        "registered PhoneType 'Home' in the open account 'acme'",
        "registered CustomerType 'Retail' in the open account 'acme'",
    ]
    assert str(refused.value) == "The AlternateIdType 'Web' is not configured for 'acme' (AlternateIdTypes)."
    assert held == []
    assert accounts.check("acme", document) == accounts.register("acme", []) == []
    assert accounts.types("acme", "PhoneTypes") == [
        {"Id": 1, "Name": "Mobile", "Description": None},
        {"Id": 2, "Name": "Home", "Description": None},
    ]
    assert accounts.export() == {"acme": {"AlternateIdTypes": SETTINGS_EXPORTED}}  # met types stay open


SETTINGS_EXPORTED = [
    {"Name": "CRM", "Description": None, "Locales": {}},
    {"Name": "Loyalty", "Description": "Card", "Locales": {"fr-ca": {"Name": "Fidélité"}}},
]


def test_account_creation_closes_a_kind_and_refuses_names_alike(shared):
    accounts = accounts_of(shared, SETTINGS)
    accounts.register("acme", [("ConsentTypes", "sms")])

    created = accounts.create(
        "acme",
        "ConsentTypes",
        [{"Name": "email", "Description": "News"}, {"Name": "post", "Locales": {"FR": {"Name": "poste"}}}],
    )
    with pytest.raises(Conflict, match="The ConsentType 'SMS' already exists for 'acme'"):
        accounts.create("acme", "ConsentTypes", [{"Name": "fax"}, {"Name": "SMS"}])
    with pytest.raises(Conflict, match=r"The ConsentType 'FAX' appears more than once \(case ignored\)."):
        accounts.create("acme", "ConsentTypes", [{"Name": "fax"}, {"Name": "FAX"}])

    assert created == [
        {"Id": 2, "Name": "email", "Description": "News"},
        {"Id": 3, "Name": "post", "Description": None},
    ]
    assert [t["Name"] for t in accounts.types("acme", "ConsentTypes")] == ["sms", "email", "post"]
    assert accounts.types("acme", "ConsentTypes", locale="fr") == [
        {"Id": 3, "Name": "poste", "Description": None}
    ]
    with pytest.raises(NotFound):
        accounts.check("acme", {"Consents": [{"ConsentType": "fax"}]})
    assert accounts.export("acme")["acme"]["ConsentTypes"][0] == {
        "Name": "sms",
        "Description": None,
        "Locales": {},
    }


def test_account_configuration_replaces_the_kinds_it_names_only(shared):
    accounts = accounts_of(shared, SETTINGS)
    accounts.register("acme", [("Tags", "VIP")])

    accounts.configure("acme", {"Tags": ["Gold"], "GroupTypes": [], "DefaultLocale": "fr_CA"})
    accounts.configure("globex", {})
    accounts.configure("initech", {"EmailTypes": ["Work"]})
    with pytest.raises(ValueError, match="Tags must be a list"):
        accounts.configure("acme", {"Tags": "VIP"})

    assert accounts.export() == {
        "acme": {
            "AlternateIdTypes": SETTINGS_EXPORTED,
            "Tags": [{"Name": "Gold", "Description": None, "Locales": {}}],
            "GroupTypes": [],
        },
        "initech": {"EmailTypes": [{"Name": "Work", "Description": None, "Locales": {}}]},
    }
    assert accounts.export("globex") == {}
    with pytest.raises(NotFound):
        accounts.check("acme", {"Groups": [{"GroupType": "any"}]})


def test_account_resets_bring_back_the_settings_and_forget_the_rest(shared):
    accounts = accounts_of(shared, SETTINGS)
    for client in ("acme", "globex"):
        accounts.configure(client, {"AlternateIdTypes": ["Web"], "Tags": ["VIP"]})
        accounts.create(client, "ConsentTypes", [{"Name": "email"}])

    accounts.reset("acme")
    one = accounts.export()
    accounts.create("acme", "AlternateIdTypes", [{"Name": "Partner"}])
    accounts.reset(seed=2)
    every = accounts.export()

    assert one == {
        "acme": {"AlternateIdTypes": SETTINGS_EXPORTED},
        "globex": {
            "AlternateIdTypes": [{"Name": "Web", "Description": None, "Locales": {}}],
            "Tags": [{"Name": "VIP", "Description": None, "Locales": {}}],
            "ConsentTypes": [{"Name": "email", "Description": None, "Locales": {}}],
        },
    }
    assert every == {"acme": {"AlternateIdTypes": SETTINGS_EXPORTED}}
    assert accounts.check("acme", {"AlternateIds": [{"AlternateIdType": "loyalty"}]}) == []


def test_unusable_account_settings_are_refused_naming_the_client(shared):
    with pytest.raises(ValueError, match=r"SANDBOX_ACCOUNTS\.acme: Tags must be a list"):
        accounts_of(shared, {"acme": {"Tags": "VIP"}})


# --- the bearer tokens ----------------------------------------------------------------------


def test_a_token_is_live_until_it_expires_on_the_given_clock(shared):
    authority = authority_of(shared)

    value = authority.grant("acme", "alice", "x", "y", T0)
    live = authority.token(value, T0 + timedelta(minutes=59))
    expired = authority.token(value, T0 + timedelta(hours=1))
    after = authority.token(value, T0)

    assert live == Token("acme", "alice", T0 + timedelta(hours=1))
    assert (expired, after) == (None, None)  # an expired token is forgotten
    assert authority.token("unknown", T0) is None


def test_a_token_authenticates_its_client_only(shared):
    authority = authority_of(shared)
    value = authority.grant("acme", "alice", "x", "y", T0)

    caller = authority.authenticate(f"Bearer {value}", "acme", "GET", T0)

    assert (caller.user, caller.warnings) == ("alice", ())
    with pytest.raises(Unauthorized):
        authority.authenticate(f"Bearer {value}", "globex", "GET", T0)


def test_a_full_reset_revokes_every_token_and_a_client_reset_none(shared):
    authority = authority_of(shared)
    value = authority.grant("acme", "alice", "x", "y", T0)

    authority.reset("acme")
    kept = authority.token(value, T0)
    authority.reset(seed=4)

    assert kept is not None
    assert authority.token(value, T0) is None


def test_past_max_tokens_the_oldest_live_ones_go_first(shared, monkeypatch):
    monkeypatch.setattr(mypreferences_sandbox.domain.auth, "MAX_TOKENS", 3)
    monkeypatch.setattr(mypreferences_sandbox.redis.parts, "MAX_TOKENS", 3)
    authority = authority_of(shared)

    values = [
        authority.grant("acme", f"u{index}", "x", "y", T0 + timedelta(minutes=index)) for index in range(5)
    ]

    assert [authority.token(value, T0) is not None for value in values] == [False, False, True, True, True]


def test_expired_tokens_make_room_before_live_ones_go(shared, monkeypatch):
    monkeypatch.setattr(mypreferences_sandbox.domain.auth, "MAX_TOKENS", 3)
    monkeypatch.setattr(mypreferences_sandbox.redis.parts, "MAX_TOKENS", 3)
    authority = authority_of(shared)
    # Issued last but expiring first: a token issued on a clock set back.
    live = [authority.grant("acme", "old", "x", "y", T0 + timedelta(hours=2)) for _ in range(2)]
    expiring = authority.grant("acme", "soon", "x", "y", T0)

    newest = authority.grant("acme", "new", "x", "y", T0 + timedelta(hours=1))

    now = T0 + timedelta(hours=1)
    assert [authority.token(value, now) is not None for value in [*live, expiring, newest]] == [
        True,
        True,
        False,
        True,
    ]


# --- two processes, one Redis ----------------------------------------------------------------


def in_processes(*calls: tuple[Callable[..., Any], tuple]) -> list[Any]:
    """What each call returned, each run in a process of its own, all at once (spawned: they
    share nothing but their arguments and the Redis)."""
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    processes = [
        context.Process(target=_answer, args=(index, function, args, answers))
        for index, (function, args) in enumerate(calls)
    ]
    for process in processes:
        process.start()
    # The timeout only keeps a broken run from hanging the suite: nothing here is timed.
    found = dict(answers.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * len(processes), found
    return [found[index] for index in range(len(calls))]


def race(function: Callable[..., Any], url: str, namespace: str) -> list[Any]:
    """What ``function`` returned in processes "p1" and "p2", each called with the url, the
    namespace, its name and a barrier both pass before they start."""
    start = multiprocessing.get_context("spawn").Barrier(2)
    return in_processes(*((function, (url, namespace, name, start)) for name in ("p1", "p2")))


def _answer(index: int, function: Callable[..., Any], args: tuple, answers: Any) -> None:
    try:
        answers.put((index, function(*args)))
    except BaseException as error:
        answers.put((index, repr(error)))
        raise


RECORDS = 300


def record_many(url: str, namespace: str, name: str, start: Any) -> int:
    journal = RedisJournal(shared_at(url, namespace), 50, 20_000)
    start.wait()
    for index in range(RECORDS):
        journal.record(entry(name, index, sequence=index))
    return RECORDS


@pytest.mark.redis
def test_journal_entries_of_two_processes_are_one_sequence_within_the_bounds(redis_url, place):
    recorded = race(record_many, redis_url, place.namespace)
    journal = RedisJournal(place, 50, 20_000)
    entries = journal.entries()

    ids = [e["id"] for e in entries]
    assert recorded == [RECORDS, RECORDS]
    assert ids == list(range(2 * RECORDS - len(ids) + 1, 2 * RECORDS + 1))  # the newest, each id once
    assert 1 < len(entries) <= 50
    assert journal.held_bytes == sum(footprint({k: v for k, v in e.items() if k != "id"}) for e in entries)
    assert journal.held_bytes <= 20_000
    for name in ("p1", "p2"):
        sequence = [e["sequence"] for e in entries if e["clientId"] == name]
        assert sequence == sorted(sequence)  # each process's entries in the order it recorded them
    assert {e["clientId"] for e in entries} <= {"p1", "p2"}


def set_the_clock(url: str, namespace: str, done: Any) -> bool:
    clock = RedisClock(shared_at(url, namespace))
    clock.set(T0)
    clock.advance(timedelta(seconds=90))
    done.set()
    return clock.frozen


def read_the_clock(url: str, namespace: str, done: Any) -> tuple[datetime, bool]:
    clock = RedisClock(shared_at(url, namespace))
    done.wait()
    return clock.now(), clock.frozen


@pytest.mark.redis
def test_a_clock_set_in_one_process_is_read_in_the_other(redis_url, place):
    namespace = place.namespace
    done = multiprocessing.get_context("spawn").Event()

    answers = in_processes(
        (set_the_clock, (redis_url, namespace, done)), (read_the_clock, (redis_url, namespace, done))
    )

    assert answers == [True, (T0 + timedelta(seconds=90), True)]
    assert RedisClock(place).now() == T0 + timedelta(seconds=90)


def configure_and_register(url: str, namespace: str, name: str, start: Any) -> list[str]:
    accounts = RedisAccounts(shared_at(url, namespace), {})
    accounts.configure(name, {"AlternateIdTypes": ["CRM"]})
    start.wait()
    told = []
    for index in range(50):
        told += accounts.register("acme", [("PhoneTypes", f"{name}-{index}"), ("PhoneTypes", "both")])
    return told


@pytest.mark.redis
def test_account_types_configured_in_one_process_are_checked_in_the_other(redis_url, place):
    told = race(configure_and_register, redis_url, place.namespace)
    accounts = RedisAccounts(place, {})
    phones = accounts.types("acme", "PhoneTypes")

    # Each name registered once, by one process or the other, and numbered once.
    assert sorted(t["Name"] for t in phones) == sorted(
        ["both", *(f"p{p}-{i}" for p in (1, 2) for i in range(50))]
    )
    assert [t["Id"] for t in phones] == list(range(1, 102))
    assert len(told[0]) + len(told[1]) == 101
    for name in ("p1", "p2"):
        assert accounts.check(name, {"AlternateIds": [{"AlternateIdType": "crm"}]}) == []
        with pytest.raises(NotFound):
            accounts.check(name, {"AlternateIds": [{"AlternateIdType": "Web"}]})


def issue_token(url: str, namespace: str, handed: Any) -> str:
    value = authority_of(shared_at(url, namespace)).grant("acme", "alice", "x", "y", T0)
    handed.put(value)
    return value


def accept_token(url: str, namespace: str, handed: Any) -> tuple[str | None, tuple[str, ...], bool]:
    authority = authority_of(shared_at(url, namespace))
    value = handed.get()
    caller = authority.authenticate(f"Bearer {value}", "acme", "GET", T0)
    return caller.user, caller.warnings, authority.token(value, T0 + timedelta(hours=1)) is None


@pytest.mark.redis
def test_a_token_issued_in_one_process_is_accepted_in_the_other(redis_url, place):
    namespace = place.namespace
    handed = multiprocessing.get_context("spawn").Queue()

    issued, accepted = in_processes(
        (issue_token, (redis_url, namespace, handed)), (accept_token, (redis_url, namespace, handed))
    )

    assert accepted == ("alice", (), True)
    assert authority_of(place).token(issued, T0) is None  # expired: forgotten
