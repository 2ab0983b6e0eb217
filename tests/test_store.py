"""AlternateId conflicts and the store under concurrency, over real HTTP."""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
import requests
from helpers import auth, minimal_profile, post_json
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sandbox import store as store_module
from sandbox.errors import BadRequest, Conflict, NotFound
from sandbox.profiles import Account, Editor, new_profile, revise, set_active
from sandbox.schemas import phone_digits
from sandbox.store import SEARCH_INDEXES, MemoryStore, alternate_id_keys, unpack


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


class IndexedStore(RuleBasedStateMachine):
    """Random creates, updates, deactivations, activations, deletes and failed writes on one client."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.ids: list[int] = []

    def snapshot(self) -> list[dict]:
        return self.store.profiles("acme")

    @rule(document=documents)
    def create(self, document):
        with contextlib.suppress(Conflict):
            self.ids.append(self.store.create("acme", new_profile(document, EDITOR))["ProfileId"])

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), document=documents)
    def replace(self, data, document):
        profile_id = data.draw(st.sampled_from(self.ids))
        before = self.snapshot()
        try:
            self.store.update("acme", profile_id, lambda current: revise(current, document, EDITOR))
        except Conflict:
            assert self.snapshot() == before

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), active=st.booleans())
    def set_activity(self, data, active):
        profile_id = data.draw(st.sampled_from(self.ids))
        self.store.update("acme", profile_id, lambda current: set_active(current, active))

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def failed_change(self, data):
        profile_id = data.draw(st.sampled_from(self.ids))
        before = self.snapshot()

        def change(current):
            current["AlternateIds"] = []
            raise BadRequest()

        with pytest.raises(BadRequest):
            self.store.update("acme", profile_id, change)
        assert self.snapshot() == before

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def delete(self, data):
        profile_id = data.draw(st.sampled_from(self.ids))
        self.store.delete("acme", profile_id)
        self.ids.remove(profile_id)

    @invariant()
    def indexes_equal_their_recomputation(self):
        tenant = self.store._tenants.get("acme")
        if tenant is None:
            return
        profiles = [unpack(stored) for stored in tenant.profiles.values()]
        alternate_ids = {key: p["ProfileId"] for p in profiles for key in alternate_id_keys(p)}
        assert dict(tenant.alternate_ids.items()) == alternate_ids
        for name, keys in SEARCH_INDEXES.items():
            expected: dict = {}
            for p in profiles:
                for key in keys(p):
                    expected.setdefault(key, set()).add(p["ProfileId"])
            assert {key: set(holders.keys()) for key, holders in tenant.search[name].items()} == expected

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


IndexedStore.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_indexes_stay_exact = IndexedStore.TestCase


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


def filled(count: int) -> MemoryStore:
    """A store of ``count`` profiles of one clientId, all of one email address."""
    store = MemoryStore()
    for index in range(count):
        document = {"AlternateIds": [{"AlternateIdType": "t", "AlternateId": str(index)}],
                    "Emails": [{"EmailAddress": "all@example.com"}]}  # fmt: skip
        store.create("acme", new_profile(document, EDITOR))
    return store


@pytest.fixture
def crowded(monkeypatch) -> tuple[MemoryStore, Counter]:
    """A store of 2,000 profiles, and what it visits under its lock from now on."""
    store = filled(2000)
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
    alone, crowded = filled(1), filled(2000)
    visited_alone = counting(monkeypatch, alone)
    write(alone)
    monkeypatch.undo()
    visited_crowded = counting(monkeypatch, crowded)

    write(crowded)

    assert visited_crowded == visited_alone


def test_a_search_stops_past_its_limit():
    store = filled(2000)
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
def test_long_loops_offer_other_requests_a_turn_at_every_step(monkeypatch, loop):
    store = filled(2000)
    for index in range(2000):
        store.create(f"c{index}", new_profile({}, EDITOR))
    steps = Counter()
    monkeypatch.setattr(store_module, "pace", lambda: steps.update(["pace"]))

    loop(store)

    assert steps["pace"] >= 2000  # a turn is offered once the loop has computed a few milliseconds
