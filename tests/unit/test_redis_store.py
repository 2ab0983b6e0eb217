"""The Redis store shared by processes: races between two of them, resets, exports and imports."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import ClassVar

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mypreferences_sandbox.contract.errors import Conflict
from mypreferences_sandbox.domain.profiles import Account, Editor, new_profile
from mypreferences_sandbox.domain.store import MemoryStore
from mypreferences_sandbox.redis import store as redis_store
from mypreferences_sandbox.redis.shared import Shared
from mypreferences_sandbox.redis.store import BATCH, NAMES, RedisStore
from redis.crc import key_slot

pytestmark = pytest.mark.redis

EDITOR = Editor(Account("Customer", "en_US"), "tester", datetime(2026, 1, 1, tzinfo=UTC))
PROCESSES = 2


def profile(*pairs: tuple[str, str], email: str | None = None) -> dict:
    document = {"AlternateIds": [{"AlternateIdType": kind, "AlternateId": ident} for kind, ident in pairs]}
    if email is not None:
        document["Emails"] = [{"EmailAddress": email}]
    return new_profile(document, EDITOR)


# --- two processes, each with its own store on one Redis ---------------------------------------


def create_pair(store: RedisStore, index: int, _: int) -> tuple:
    kind, ident = ("crm", "C-1") if index % 2 else ("CRM", "c-1")
    return ("created", store.create("acme", profile((kind, ident)))["ProfileId"])


def create(store: RedisStore, index: int, _: int) -> tuple:
    return ("created", store.create(f"client-{index % 3}", profile())["ProfileId"])


def append(store: RedisStore, index: int, profile_id: int) -> tuple:
    for step in range(5):
        address = {"EmailAddress": f"e{index}-{step}@example.com"}
        store.update(
            "acme",
            profile_id,
            lambda current, address=address: {**current, "Emails": [*current["Emails"], address]},
        )
    return ("appended",)


JOBS: dict[str, Callable[[RedisStore, int, int], tuple]] = {
    "create-pair": create_pair,
    "create": create,
    "append": append,
}


def race(url: str, namespace: str, job: str, first: int, threads: int, argument: int, start, answers) -> None:
    """In a process of its own: ``threads`` threads each doing ``job`` once on this process's
    store, all let go at once when every process is ready; their outcomes are put in ``answers``."""
    connection = redis.Redis.from_url(url)
    store = RedisStore(Shared(connection, namespace=namespace))
    ready = threading.Barrier(threads + 1)
    outcomes: list[tuple] = []

    def run(index: int) -> None:
        ready.wait()
        try:
            outcomes.append(JOBS[job](store, index, argument))
        except Conflict as error:
            outcomes.append(("conflict", error.message))

    workers = [threading.Thread(target=run, args=(first + index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    ready.wait()
    for worker in workers:
        worker.join()
    connection.close()
    answers.put(outcomes)


def raced(url: str, namespace: str, job: str, threads: int, argument: int = 0) -> list[tuple]:
    """The outcomes of ``job`` done by ``threads`` threads in each of two spawned processes at once."""
    context = multiprocessing.get_context("spawn")
    start, answers = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(
            target=race, args=(url, namespace, job, index * threads, threads, argument, start, answers)
        )
        for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [outcome for _ in processes for outcome in answers.get(timeout=300)]
    for process in processes:
        process.join()
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return outcomes


def owners(store: RedisStore) -> dict[int, bytes]:
    """The server-wide map of ProfileIds to the clientIds that claimed them."""
    claims = store.shared.redis.hgetall(store.shared.server_key("profiles:owners"))
    return {int(number): owner for number, owner in claims.items()}


@pytest.fixture
def store(connection, namespace) -> Iterator[RedisStore]:
    made = RedisStore(Shared(connection, namespace=namespace))
    yield made
    made.reset()


def test_of_concurrent_creates_of_one_alternate_id_exactly_one_succeeds(redis_server, namespace, store):
    outcomes = raced(redis_server.url, namespace, "create-pair", threads=25)

    created = [outcome for outcome in outcomes if outcome[0] == "created"]
    assert len(created) == 1
    assert Counter(outcome[0] for outcome in outcomes) == {"created": 1, "conflict": 49}
    assert {outcome[1] for outcome in outcomes if outcome[0] == "conflict"} <= {
        "A profile with AlternateIdType 'crm' and AlternateId 'C-1' already exists.",
        "A profile with AlternateIdType 'CRM' and AlternateId 'c-1' already exists.",
    }
    assert [p["ProfileId"] for p in store.profiles("acme")] == [created[0][1]]
    assert store.holder("acme", "Crm", "C-1")["ProfileId"] == created[0][1]
    # The ProfileIds of the refused creates are used up, and their claims withdrawn.
    assert owners(store) == {created[0][1]: b"=acme"}


def test_concurrent_creates_never_share_a_profile_id(redis_server, namespace, store):
    outcomes = raced(redis_server.url, namespace, "create", threads=100)

    ids = [outcome[1] for outcome in outcomes]
    assert [outcome[0] for outcome in outcomes] == ["created"] * 200
    assert len(set(ids)) == 200
    stored = [p["ProfileId"] for client in range(3) for p in store.profiles(f"client-{client}")]
    assert sorted(stored) == sorted(ids)
    assert set(owners(store).values()) == {b"=client-0", b"=client-1", b"=client-2"}
    assert sorted(owners(store)) == sorted(ids)
    assert store.create("acme", profile())["ProfileId"] > max(ids)


def test_concurrent_updates_of_one_profile_lose_nothing(redis_server, namespace, store):
    profile_id = store.create("acme", profile(("crm", "A")))["ProfileId"]

    outcomes = raced(redis_server.url, namespace, "append", threads=20, argument=profile_id)

    assert outcomes == [("appended",)] * 40
    emails = [entry["EmailAddress"] for entry in store.get("acme", profile_id)["Emails"]]
    expected = {f"e{index}-{step}@example.com" for index in range(40) for step in range(5)}
    assert len(emails) == 200
    assert set(emails) == expected
    assert all(
        [p["ProfileId"] for p in store.search("acme", "email", email)] == [profile_id] for email in expected
    )


# --- a reset of one clientId: its keys unlinked at once, whatever their size --------------------


class CountedConnection(redis.Connection):
    """A connection that counts the commands it sends, one at a time or pipelined."""

    sent: ClassVar[Counter] = Counter()

    def send_command(self, *args, **kwargs):
        CountedConnection.sent["commands"] += 1
        return super().send_command(*args, **kwargs)

    def pack_commands(self, commands):
        commands = list(commands)
        CountedConnection.sent["commands"] += len(commands)
        return super().pack_commands(commands)


def commands_sent(action: Callable[[], object]) -> int:
    CountedConnection.sent.clear()
    action()
    return CountedConnection.sent["commands"]


def test_a_reset_of_one_client_sends_as_many_commands_whatever_its_size(redis_server, namespace):
    connection = redis.Redis.from_url(redis_server.url, connection_class=CountedConnection)
    store = RedisStore(Shared(connection, namespace=namespace))
    big = [
        {**profile(("crm", f"id-{index}"), email="all@example.com"), "ProfileId": None}
        for index in range(10_000)
    ]
    store.replace_clients([("big", big), ("small", [{**profile(("crm", "id-0")), "ProfileId": None}])])
    kept = store.create("kept", profile(("crm", "id-1"), email="all@example.com"))
    before = store.profiles("small")

    costs = [commands_sent(lambda: store.reset("big")), commands_sent(lambda: store.reset("small"))]

    assert costs == [1, 1]
    assert connection.exists(*store._keys("big"), *store._keys("small")) == 0
    assert store.profiles("kept") == [kept]
    assert store.search("kept", "email", "all@example.com") == [kept]
    assert set(store.export()) == {"kept"}
    assert before and store.profiles("small") == []
    assert store.create("big", profile(("crm", "id-0")))["ProfileId"] > kept["ProfileId"]
    store.reset()
    connection.close()


def test_a_full_reset_forgets_every_client_and_restarts_profile_ids(connection, namespace, store):
    for client in ("a", "b", "c"):
        store.create(client, profile(("crm", "x")))
    other = RedisStore(Shared(connection, namespace=f"{namespace}-other"))
    kept = other.create("a", profile())

    store.reset()

    # Nothing is left of the namespace: neither a clientId's keys, nor the server-wide ones.
    assert [
        *connection.scan_iter(match=f"{{{namespace}}}*"),
        *connection.scan_iter(match=f"{{{namespace}:*"),
    ] == []
    assert store.export() == {}
    assert store.create("a", profile(("crm", "x")))["ProfileId"] == 1
    assert other.profiles("a") == [kept]
    other.reset()


def test_a_profile_written_as_a_full_reset_went_by_keeps_its_profile_id_and_is_reset_next_time(
    connection, store
):
    # As a full reset that took the clientIds just before a create of "a" landed: the sequence and
    # the owners are gone, the profile is not.
    first = store.create("a", profile(("crm", "x")))
    connection.unlink(store._sequence, store._owners)

    second = store.create("a", profile())
    store.reset()

    assert first["ProfileId"] == 1
    assert second["ProfileId"] == 2  # not a second ProfileId 1 (before: a 500)
    assert store.export() == {}
    assert store.profiles("a") == []


def test_full_resets_racing_creates_leave_nothing_behind(store):
    stop = threading.Event()
    failures: list[BaseException] = []

    def creating() -> None:
        while not stop.is_set():
            try:
                store.create("racer", profile())
            except BaseException as error:  # any at all is the failure this test looks for
                failures.append(error)

    writers = [threading.Thread(target=creating) for _ in range(4)]
    for writer in writers:
        writer.start()
    for _ in range(20):
        store.reset()
    stop.set()
    for writer in writers:
        writer.join()
    store.reset()

    assert failures == []
    assert store.export() == {}
    assert store.create("racer", profile())["ProfileId"] == 1


# --- export and import: more than one batch ----------------------------------------------------


def test_an_export_of_several_batches_round_trips_through_an_import(connection, namespace, store):
    count = 2 * BATCH + 123
    for index in range(count):
        store.create("acme", profile(("crm", f"id-{index}"), email=f"p{index % 7}@example.com"))
    store.create("beta", profile(("crm", "id-0")))
    exported = {name: list(profiles) for name, profiles in store.export().items()}
    copy = RedisStore(Shared(connection, namespace=f"{namespace}-copy"))

    copy.replace_clients(iter(store.export().items()))
    store.replace_clients(store.export("acme").items())

    assert [p["ProfileId"] for p in exported["acme"]] == list(range(1, count + 1))
    for imported in (copy, store):
        assert {name: list(profiles) for name, profiles in imported.export().items()} == exported
        assert len(imported.search("acme", "email", "p3@example.com")) == len(range(3, count, 7))
        assert imported.holder("acme", "CRM", f"ID-{count - 1}")["ProfileId"] == count
    assert copy.create("acme", profile())["ProfileId"] == count + 2
    with pytest.raises(Conflict, match="AlternateIdType 'crm' and AlternateId 'id-5' already exists"):
        copy.create("acme", profile(("crm", "id-5")))
    assert not [key for key in connection.scan_iter(match=f"*{namespace}*") if b":import:" in key]
    copy.reset()


def test_an_export_reads_each_client_from_the_moment_its_reading_starts(store):
    for index in range(BATCH + 10):
        store.create("acme", profile(("crm", f"id-{index}")))
    every = store.profiles("acme")
    reading = store.export("acme")["acme"]

    first = next(reading)
    store.delete("acme", BATCH + 10)
    store.update("acme", BATCH + 6, lambda current: {**current, "AlternateIds": []})
    store.create("acme", profile(("crm", f"id-{BATCH + 5}")))
    rest = list(reading)

    assert [first, *rest] == every
    assert len(store.profiles("acme")) == BATCH + 10
    assert not [
        key for key in store.shared.redis.scan_iter(match=f"*{store.shared.namespace}*") if b":export:" in key
    ]


def test_an_import_refuses_a_profile_id_a_create_has_claimed_but_not_yet_stored(store):
    """A create claims its ProfileId (pending) before its client's script stores the profile."""
    store.shared.redis.hset(store.shared.server_key("profiles:owners"), f"{7:019d}", "?acme")
    store.create("gamma", profile())

    with pytest.raises(Conflict, match="ProfileId 7 is used twice"):
        store.replace_clients([("beta", [{**profile(), "ProfileId": 7}])])

    assert set(store.export()) == {"gamma"}
    assert owners(store) == {1: b"=gamma", 7: b"?acme"}


def test_every_key_of_a_client_shares_one_hash_slot(store):
    store.replace_clients([("acme", [{**profile(("crm", "a"), email="a@example.com"), "ProfileId": None}])])
    keys = [*store._keys("acme"), *store._keys("acme", "import:token:")]

    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert len(NAMES) == len(store._keys("acme"))


# --- imports answered as MemoryStore answers them, batch boundaries included ----------------------

imported_profiles = st.lists(
    st.tuples(
        st.sampled_from([None, 1, 2, 3, 7, 8]),
        st.lists(
            st.sampled_from([("crm", "a"), ("CRM", "A"), ("crm", "b"), ("web", "a"), ("crm", "a0")]),
            max_size=2,
        ),
    ),
    max_size=7,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    existing=st.lists(st.sampled_from(["acme", "beta", "gamma"]), max_size=4),
    clients=st.lists(st.tuples(st.sampled_from(["acme", "beta", "delta"]), imported_profiles), max_size=3),
)
def test_imports_are_answered_as_by_memory_store(connection, monkeypatch, existing, clients):
    """Profiles created first (gamma's hold AlternateIds of their own), then an import, then a create."""
    monkeypatch.setattr(redis_store, "BATCH", 2)  # a batch boundary inside most imports
    store, model = RedisStore(Shared(connection, namespace=uuid.uuid4().hex)), MemoryStore()
    outcomes = []
    for each in (store, model):
        for index, client_id in enumerate(existing):
            each.create(client_id, profile(("crm", f"a{index}")) if client_id == "gamma" else profile())
        try:
            each.replace_clients(
                (client_id, [{**profile(*pairs), "ProfileId": profile_id} for profile_id, pairs in profiles])
                for client_id, profiles in clients
            )
            outcome: tuple = ("imported",)
        except Conflict as error:
            outcome = (error.message, error.conflict)
        exported = {name: list(profiles) for name, profiles in each.export().items()}
        outcomes.append((outcome, exported, each.create("acme", profile())["ProfileId"]))
    store.reset()

    assert outcomes[0] == outcomes[1]
