"""AlternateId conflicts and the store under concurrency, over real HTTP; both stores (memory, Redis) directly."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest
import redis
import requests
from helpers import STORES, auth, minimal_profile, post_json
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from mypreferences_sandbox.contract.errors import BadRequest, Conflict, NotFound, VendorError
from mypreferences_sandbox.contract.schemas import INT64_MAX, phone_digits
from mypreferences_sandbox.domain import store as store_module
from mypreferences_sandbox.domain.profiles import Account, Editor, new_profile, revise, set_active
from mypreferences_sandbox.domain.store import SEARCH_INDEXES, MemoryStore, ProfileStore, alternate_id_keys
from mypreferences_sandbox.redis import store as redis_store_module
from mypreferences_sandbox.redis.shared import Shared
from mypreferences_sandbox.redis.store import RedisStore


def alternate_ids(*pairs: tuple[str, str]) -> list[dict]:
    return [{"AlternateIdType": kind, "AlternateId": ident} for kind, ident in pairs]


def test_alternate_id_held_by_another_profile_is_409_naming_the_pair(profile_url, served, client_id):
    first = post_json(profile_url, minimal_profile(AlternateIds=alternate_ids(("crm", "C-1"))))

    second = post_json(
        profile_url, minimal_profile(AlternateIds=alternate_ids(("web", "W-9"), ("crm", "C-1")))
    )

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json() == {
        "Message": "A profile with AlternateIdType 'crm' and AlternateId 'C-1' already exists."
    }
    assert [profile["ProfileId"] for profile in served.profiles(client_id)] == [first.json()["ProfileId"]]


def test_conflict_ignores_letter_case(profile_url, served, client_id):
    post_json(profile_url, minimal_profile(AlternateIds=alternate_ids(("Salesforce", "00Q-Abc"))))

    response = post_json(profile_url, minimal_profile(AlternateIds=alternate_ids(("SALESFORCE", "00q-aBC"))))

    assert response.status_code == 409
    assert "'SALESFORCE'" in response.json()["Message"]
    assert len(served.profiles(client_id)) == 1


def test_conflict_in_xml(profile_url):
    pair = alternate_ids(("crm", "X-1"))
    post_json(profile_url, minimal_profile(AlternateIds=pair))

    response = post_json(profile_url, minimal_profile(AlternateIds=pair), Accept="application/xml")

    assert response.status_code == 409
    assert "<Message>A profile with AlternateIdType &apos;crm&apos;" in response.text


@pytest.mark.parametrize(
    "other",
    [("crm", "C-2"), ("erp", "C-1")],
    ids=["same-type-other-id", "other-type-same-id"],
)
def test_a_different_pair_is_no_conflict(profile_url, other):
    post_json(profile_url, minimal_profile(AlternateIds=alternate_ids(("crm", "C-1"))))

    assert post_json(profile_url, minimal_profile(AlternateIds=alternate_ids(other))).status_code == 201


def test_the_same_pair_under_another_client_is_no_conflict(base_url, client_id):
    pair = alternate_ids(("crm", "C-1"))

    first = post_json(f"{base_url}/{client_id}/Profile", minimal_profile(AlternateIds=pair))
    second = post_json(f"{base_url}/{client_id}-b/Profile", minimal_profile(AlternateIds=pair))

    assert (first.status_code, second.status_code) == (201, 201)


def test_profiles_without_alternate_ids_never_conflict(profile_url, served, client_id):
    statuses = [post_json(profile_url, minimal_profile()).status_code for _ in range(3)]

    assert statuses == [201, 201, 201]
    assert len(served.profiles(client_id)) == 3


def test_profile_ids_are_positive_unique_and_increasing_across_clients(base_url, client_id):
    ids = [
        post_json(f"{base_url}/{client_id}-{index % 3}/Profile", minimal_profile()).json()["ProfileId"]
        for index in range(6)
    ]

    assert ids[0] > 0
    assert ids == sorted(set(ids))


def test_concurrent_creates_with_overlapping_alternate_ids(profile_url, served, client_id):
    """8 threads x 200 creates over 100 pairs (in varying case): one 201 per pair, 409 for the rest."""
    threads, per_thread, pairs = 8, 200, 100
    results: list[tuple[int, int, dict]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(seed: int) -> None:
        order = random.Random(seed).sample(range(per_thread), per_thread)
        session = requests.Session()
        session.headers.update(auth())
        start.wait()
        for step in order:
            pair = step % pairs
            kind = "crm" if seed % 2 else "CRM"
            body = minimal_profile(AlternateIds=alternate_ids((kind, f"id-{pair}")))
            response = session.post(profile_url, json=body, timeout=30)
            with lock:
                results.append((pair, response.status_code, response.json()))

    workers = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    created = [(pair, body) for pair, status, body in results if status == 201]
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {201: pairs, 409: threads * per_thread - pairs}
    assert sorted(pair for pair, _ in created) == list(range(pairs))
    created_ids = sorted(body["ProfileId"] for _, body in created)
    assert len(set(created_ids)) == pairs
    stored = served.profiles(client_id)
    assert sorted(profile["ProfileId"] for profile in stored) == created_ids
    assert sorted(profile["AlternateIds"][0]["AlternateId"] for profile in stored) == sorted(
        f"id-{pair}" for pair in range(pairs)
    )


# --- the indexes stay exact under every sequence of operations --------------------------------

PAIRS = [("crm", "a-1"), ("CRM", "A-1"), ("crm", "a-2"), ("erp", "a-1"), ("web", "w")]
EMAILS = ["ann@example.com", "ANN@example.com", "bob@example.com"]
PHONES = ["404-555-0100", "(404) 555 0100", "555-0199"]
EDITOR = Editor(Account("Customer", "en_US"), "tester", datetime(2026, 1, 1, tzinfo=UTC))

documents = st.fixed_dictionaries(
    {
        "AlternateIds": st.lists(
            st.sampled_from(PAIRS), max_size=3, unique_by=lambda p: (p[0].casefold(), p[1].casefold())
        ).map(lambda pairs: [{"AlternateIdType": kind, "AlternateId": ident} for kind, ident in pairs]),
        "Emails": st.lists(st.sampled_from(EMAILS).map(lambda email: {"EmailAddress": email}), max_size=2),
        "PhoneNumbers": st.lists(
            st.sampled_from(PHONES).map(lambda phone: {"PhoneNumber": phone}), max_size=2
        ),
    }
)


@pytest.fixture(params=STORES)
def new_store(request) -> Iterator[Callable[[], ProfileStore]]:
    """Makes empty stores of one kind: in memory, or each in its own namespace of the session's Redis."""
    if request.param == "memory":
        yield MemoryStore
        return
    connection = redis.Redis.from_url(request.getfixturevalue("redis_server").url)
    made: list[RedisStore] = []

    def make() -> RedisStore:
        made.append(RedisStore(Shared(connection, namespace=uuid.uuid4().hex)))
        return made[-1]

    yield make
    for store in made:
        store.reset()
    connection.close()


class IndexedStore(RuleBasedStateMachine):
    """Random creates, updates (by ProfileId or AlternateId), upserts, deactivations, activations,
    deletes and failed writes on one client, each answered by the store as by a MemoryStore (the model)."""

    def __init__(self, store: ProfileStore) -> None:
        super().__init__()
        self.store = store
        self.model = MemoryStore()
        self.ids: list[int] = []

    def snapshot(self) -> list[dict]:
        return self.store.profiles("acme")

    def both(self, operation: Callable[[ProfileStore], object]) -> object:
        """``operation``'s answer from the store, once the model has answered the same (or failed alike)."""
        outcomes = []
        for store in (self.store, self.model):
            try:
                outcomes.append(("answer", operation(store)))
            except VendorError as error:
                outcomes.append((type(error).__name__, error.message, error.conflict))
        assert outcomes[0] == outcomes[1]
        return outcomes[0][1]

    @rule(document=documents)
    def create(self, document):
        created = self.both(lambda store: store.create("acme", new_profile(document, EDITOR)))
        if isinstance(created, dict):
            self.ids.append(created["ProfileId"])

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), document=documents)
    def replace(self, data, document):
        profile_id = data.draw(st.sampled_from(self.ids))
        before = self.snapshot()
        outcome = self.both(
            lambda store: store.update("acme", profile_id, lambda current: revise(current, document, EDITOR))
        )
        if not isinstance(outcome, dict):
            assert self.snapshot() == before

    @rule(pair=st.sampled_from(PAIRS), document=documents, active=st.booleans())
    def upsert(self, pair, document, active):
        kind, ident = pair
        # The document holding the pair once, as the service's upsert makes it.
        others = [e for e in document["AlternateIds"] if e["AlternateIdType"].casefold() != kind.casefold()
                  or e["AlternateId"].casefold() != ident.casefold()]  # fmt: skip
        held = {"AlternateIds": [*others, {"AlternateIdType": kind, "AlternateId": ident}]}
        outcome = self.both(
            lambda store: store.upsert(
                "acme",
                kind,
                ident,
                lambda current: set_active(current, active),
                lambda: new_profile({**document, **held}, EDITOR),
            )
        )
        if isinstance(outcome, tuple) and outcome[1]:
            self.ids.append(outcome[0]["ProfileId"])

    @rule(pair=st.sampled_from(PAIRS), document=documents)
    def replace_holder(self, pair, document):
        self.both(
            lambda store: store.update_holder(
                "acme", *pair, lambda current: revise(current, document, EDITOR)
            )
        )

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), active=st.booleans())
    def set_activity(self, data, active):
        profile_id = data.draw(st.sampled_from(self.ids))
        self.both(lambda store: store.update("acme", profile_id, lambda current: set_active(current, active)))

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def failed_change(self, data):
        profile_id = data.draw(st.sampled_from(self.ids))
        before = self.snapshot()

        def change(current):
            current["AlternateIds"] = []
            raise BadRequest()

        assert self.both(lambda store: store.update("acme", profile_id, change)) == BadRequest.message
        assert self.snapshot() == before

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def delete(self, data):
        profile_id = data.draw(st.sampled_from(self.ids))
        self.both(lambda store: store.delete("acme", profile_id))
        self.ids.remove(profile_id)

    @invariant()
    def answers_equal_the_model(self):
        assert self.snapshot() == self.model.profiles("acme")
        assert {name: list(profiles) for name, profiles in self.store.export().items()} == {
            name: list(profiles) for name, profiles in self.model.export().items()
        }

    @invariant()
    def indexes_equal_their_recomputation(self):
        profiles = self.snapshot()
        alternate_ids = {key: p["ProfileId"] for p in profiles for key in alternate_id_keys(p)}
        expected: dict = {name: {} for name in SEARCH_INDEXES}
        for name, keys in SEARCH_INDEXES.items():
            for p in profiles:
                for key in keys(p):
                    expected[name].setdefault(key, set()).add(p["ProfileId"])
        assert indexes(self.store, "acme") == (alternate_ids, expected)

    @invariant()
    def lookups_agree_with_a_naive_scan(self):
        profiles = self.snapshot()
        active = [p for p in profiles if p["IsActive"]]
        assert sorted(p["ProfileId"] for p in profiles) == sorted(self.ids)
        for kind, ident in PAIRS:
            holders = [p for p in active if any(
                (e["AlternateIdType"].casefold(), e["AlternateId"].casefold()) == (kind.casefold(), ident.casefold())
                for e in p["AlternateIds"])]  # fmt: skip
            try:
                assert [self.store.holder("acme", kind, ident)] == holders
            except NotFound:
                assert holders == []
        for email in EMAILS:
            scanned = [
                p
                for p in active
                if any(e["EmailAddress"].casefold() == email.casefold() for e in p["Emails"])
            ]
            assert self.store.search("acme", "email", email.casefold()) == scanned
        for phone in PHONES:
            digits = phone_digits(phone)
            scanned = [
                p for p in active if any(phone_digits(e["PhoneNumber"]) == digits for e in p["PhoneNumbers"])
            ]
            assert self.store.search("acme", "phone", digits) == scanned


def indexes(store: ProfileStore, client_id: str) -> tuple[dict, dict]:
    """What ``store`` holds in its indexes for ``client_id``: AlternateId keys to ProfileIds, and
    each search index's keys to sets of ProfileIds."""
    if isinstance(store, MemoryStore):
        tenant = store._tenants.get(client_id, store_module.Tenant(client_id))
        search = {
            name: {key: set(holders.keys()) for key, holders in tenant.search[name].items()}
            for name in SEARCH_INDEXES
        }
        return dict(tenant.alternate_ids.items()), search
    assert isinstance(store, RedisStore)
    connection, keys = store.shared.redis, store._keys(client_id)
    names = redis_store_module.NAMES
    stored = {int(number) for number in connection.hkeys(keys[names.index("by_id")])}
    assert {int(number) for number in connection.zrange(keys[names.index("ids")], 0, -1)} == stored
    alternate_ids = {
        key.decode(): int(number)
        for key, number in connection.hgetall(keys[names.index("alternate_ids")]).items()
    }
    search: dict = {name: {} for name in SEARCH_INDEXES}
    for name in SEARCH_INDEXES:
        for member in connection.zrange(keys[names.index(name)], 0, -1):
            key, _, number = member.decode().rpartition("\0")
            search[name].setdefault(key, set()).add(int(number))
    return alternate_ids, search


def test_indexes_stay_exact(new_store):
    run_state_machine_as_test(
        lambda: IndexedStore(new_store()),
        settings=settings(max_examples=150, stateful_step_count=30, deadline=None),
    )


# --- ProfileIds and imports, in both stores ---------------------------------------------------


def numbered(profile_id: int | None, *pairs: tuple[str, str]) -> dict:
    """A stored profile as an import gives it: ``profile_id`` (None: to be numbered) and AlternateIds."""
    return {**new_profile({"AlternateIds": alternate_ids(*pairs)}, EDITOR), "ProfileId": profile_id}


def ids_of(store: ProfileStore) -> dict[str, list[int]]:
    return {name: [p["ProfileId"] for p in profiles] for name, profiles in store.export().items()}


def test_another_clients_profile_is_unknown(new_store):
    store = new_store()
    profile_id = store.create("acme", new_profile({}, EDITOR))["ProfileId"]

    with pytest.raises(NotFound) as error:
        store.get("other", profile_id)

    assert error.value.message == f"No profile with ProfileId {profile_id} exists for 'other'."


def test_after_an_import_the_sequence_continues_past_its_highest_profile_id(new_store):
    store = new_store()
    store.create("acme", new_profile({}, EDITOR))

    store.replace_clients(
        [("beta", [numbered(None), numbered(100), numbered(None)]), ("gamma", [numbered(None)])]
    )

    assert ids_of(store) == {"acme": [1], "beta": [100, 101, 102], "gamma": [103]}
    assert store.create("acme", new_profile({}, EDITOR))["ProfileId"] == 104


def test_the_last_profile_id_then_409_until_a_reset(new_store):
    store = new_store()
    store.replace_clients([("acme", [numbered(INT64_MAX - 1)])])

    assert store.create("acme", new_profile({}, EDITOR))["ProfileId"] == INT64_MAX
    with pytest.raises(Conflict, match=f"the sequence has reached {INT64_MAX}"):
        store.create("acme", new_profile({}, EDITOR))
    store.reset()
    assert store.create("acme", new_profile({}, EDITOR))["ProfileId"] == 1


@pytest.mark.parametrize(
    "free",
    [
        lambda store, profile_id: store.delete("acme", profile_id),
        lambda store, profile_id: store.reset("acme"),
    ],
    ids=["deleted", "client-reset"],
)
def test_a_profile_id_another_client_holds_is_409_until_it_lets_it_go(new_store, free):
    store = new_store()
    profile_id = store.create("acme", new_profile({}, EDITOR))["ProfileId"]

    with pytest.raises(Conflict) as error:
        store.replace_clients([("beta", [numbered(profile_id)])])
    assert error.value.message == f"ProfileId {profile_id} is used twice."
    assert ids_of(store) == {"acme": [profile_id]}

    free(store, profile_id)
    store.replace_clients([("beta", [numbered(profile_id)])])
    assert ids_of(store)["beta"] == [profile_id]


def test_an_import_may_move_a_profile_id_between_the_clients_it_replaces(new_store):
    store = new_store()
    profile_id = store.create("acme", new_profile({}, EDITOR))["ProfileId"]

    store.replace_clients([("beta", [numbered(profile_id)]), ("acme", [])])

    assert ids_of(store) == {"acme": [], "beta": [profile_id]}
    with pytest.raises(Conflict, match=f"ProfileId {profile_id} is used twice"):
        store.replace_clients([("gamma", [numbered(profile_id)])])


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        (
            [("beta", [numbered(5, ("crm", "A")), numbered(None, ("CRM", "a"))])],
            "AlternateIdType 'CRM' and AlternateId 'a' already",
        ),
        ([("beta", [numbered(7)]), ("gamma", [numbered(None), numbered(7)])], "ProfileId 7 is used twice."),
        ([("beta", [numbered(8)]), ("gamma", [numbered(2)])], "ProfileId 2 is used twice."),
    ],
    ids=["alternate-id-twice", "profile-id-twice", "profile-id-held"],
)
def test_a_refused_import_changes_nothing(new_store, clients, message):
    """The import also moves acme's ProfileId 1 to delta: refused, acme keeps it."""
    store = new_store()
    store.create("acme", new_profile({}, EDITOR))
    store.create("zeta", new_profile({}, EDITOR))
    before = {name: list(profiles) for name, profiles in store.export().items()}

    with pytest.raises(Conflict, match=message):
        store.replace_clients([("acme", []), ("delta", [numbered(1)]), *clients])

    assert {name: list(profiles) for name, profiles in store.export().items()} == before
    with pytest.raises(Conflict, match="ProfileId 1 is used twice"):
        store.replace_clients([("delta", [numbered(1)])])
    assert store.create("acme", new_profile({}, EDITOR))["ProfileId"] == 3


def test_an_error_while_an_import_is_read_changes_nothing(new_store):
    store = new_store()
    store.create("acme", new_profile({}, EDITOR))

    def clients():
        yield "beta", [numbered(None)] * 3
        raise BadRequest("The state document is invalid.")

    with pytest.raises(BadRequest):
        store.replace_clients(clients())

    assert ids_of(store) == {"acme": [1]}
    assert store.create("beta", new_profile({}, EDITOR))["ProfileId"] == 2


def test_upsert_updates_the_active_holder_or_creates(new_store):
    store = new_store()
    document = {"AlternateIds": alternate_ids(("crm", "A"))}

    created = store.upsert(
        "acme", "CRM", "a", lambda p: set_active(p, False), lambda: new_profile(document, EDITOR)
    )
    updated = store.upsert(
        "acme", "crm", "A", lambda p: set_active(p, False), lambda: new_profile(document, EDITOR)
    )

    assert (created[0]["ProfileId"], created[1], updated[0]["ProfileId"], updated[1]) == (1, True, 1, False)
    assert not updated[0]["IsActive"]
    with pytest.raises(Conflict, match="AlternateIdType 'crm' and AlternateId 'A' already exists"):
        store.upsert("acme", "crm", "a", lambda p: p, lambda: new_profile(document, EDITOR))
    with pytest.raises(NotFound):
        store.update_holder("acme", "crm", "a", lambda p: p)


# --- nothing proportional to the number of profiles happens under the lock ------------------


def counting(monkeypatch, store: MemoryStore) -> Counter:
    """A counter of the profiles ``store`` encodes or decodes while its lock is held, from now on."""
    under_lock: Counter = Counter()
    for name in ("pack", "unpack"):
        original = getattr(store_module, name)

        def counted(value, original=original, name=name):
            under_lock[name] += store._lock.locked()
            return original(value)

        monkeypatch.setattr(store_module, name, counted)
    return under_lock


StoreT = TypeVar("StoreT", bound=ProfileStore)


def filled(store: StoreT, count: int) -> StoreT:
    """``store`` with ``count`` profiles of one clientId added, all of one email address."""
    for index in range(count):
        document = {"AlternateIds": [{"AlternateIdType": "t", "AlternateId": str(index)}],
                    "Emails": [{"EmailAddress": "all@example.com"}]}  # fmt: skip
        store.create("acme", new_profile(document, EDITOR))
    return store


@pytest.fixture
def crowded(monkeypatch) -> tuple[MemoryStore, Counter]:
    """A store of 2,000 profiles, and what it visits under its lock from now on."""
    store = filled(MemoryStore(), 2000)
    return store, counting(monkeypatch, store)


@pytest.mark.parametrize(
    "read",
    [
        lambda store: store.scan("acme", lambda profile: False),
        lambda store: store.scan("acme", lambda profile: True, limit=50),
        lambda store: store.search("acme", "email", "all@example.com", limit=50),
        lambda store: store.search("acme", "email", "all@example.com", matches=lambda profile: False),
        lambda store: store.profiles("acme"),
        lambda store: [list(profiles) for profiles in store.export().values()],
        lambda store: store.reset(),
        lambda store: store.reset("acme"),
    ],
    ids=["scan-none", "scan-all", "search-all", "search-none", "profiles", "export", "reset", "reset-one"],
)
def test_reads_and_resets_visit_no_profile_under_the_lock(crowded, read):
    store, under_lock = crowded

    read(store)

    assert under_lock == Counter()


@pytest.mark.parametrize(
    "write",
    [
        lambda store: store.update("acme", 1, lambda profile: set_active(profile, False)),
        lambda store: store.create("acme", new_profile({}, EDITOR)),
        lambda store: store.delete("acme", 1),
    ],
    ids=["update", "create", "delete"],
)
def test_a_write_visits_as_much_under_the_lock_whatever_the_number_stored(monkeypatch, write):
    alone, crowded = filled(MemoryStore(), 1), filled(MemoryStore(), 2000)
    visited_alone = counting(monkeypatch, alone)
    write(alone)
    monkeypatch.undo()
    visited_crowded = counting(monkeypatch, crowded)

    write(crowded)

    assert visited_crowded == visited_alone


def test_a_search_stops_past_its_limit(new_store):
    store = filled(new_store(), 2000)
    read = []
    store.scan("acme", lambda profile: read.append(profile) or True, limit=50)

    assert len(read) == 51


@pytest.mark.parametrize(
    "loop",
    [
        lambda store: [list(profiles) for profiles in store.export().values()],
        lambda store: store.scan("acme", lambda profile: False),
        lambda store: store.replace_clients((f"c{index}", []) for index in range(2000)),
    ],
    ids=["export-of-many-clients", "scan", "import-of-many-clients"],
)
def test_long_loops_offer_other_requests_a_turn_at_every_step(monkeypatch, new_store, loop):
    store = filled(new_store(), 2000)
    for index in range(2000):
        store.create(f"c{index}", new_profile({}, EDITOR))
    steps = Counter()
    for module in (store_module, redis_store_module):
        monkeypatch.setattr(module, "pace", lambda: steps.update(["pace"]))

    loop(store)

    assert steps["pace"] >= 2000  # a turn is offered once the loop has computed a few milliseconds
