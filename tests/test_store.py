"""AlternateId conflicts and the store under concurrency, over real HTTP."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
import requests
from helpers import minimal_profile, post_json


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
