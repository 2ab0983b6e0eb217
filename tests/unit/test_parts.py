"""Every stateful part of a sandbox comes in both kinds, in memory and in Redis, and each kind meets
its part's one specification (its base class or protocol) in one suite parametrised over both."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mypreferences_sandbox.domain.accounts import AccountsBase
from mypreferences_sandbox.domain.auth import TokenKeeper
from mypreferences_sandbox.domain.clock import ClockBase
from mypreferences_sandbox.domain.faults import FaultRegistryBase
from mypreferences_sandbox.domain.history import HistoryBase
from mypreferences_sandbox.domain.journal import JournalBase
from mypreferences_sandbox.domain.store import ProfileStore
from mypreferences_sandbox.parts import Parts
from mypreferences_sandbox.settings import DEFAULTS

TESTS = Path(__file__).resolve().parents[1]

# Each part: its specification, and the suite that holds both kinds to it (a fixture of
# helpers.STORES in that module makes every test of it run on each kind). The authority's state
# is its token keeper.
PARTS: dict[str, tuple[Any, str]] = {
    "clock": (ClockBase, "unit/test_redis_parts.py"),
    "accounts": (AccountsBase, "unit/test_redis_parts.py"),
    "store": (ProfileStore, "http/test_store.py"),
    "faults": (FaultRegistryBase, "unit/test_fault_registry.py"),
    "journal": (JournalBase, "unit/test_redis_parts.py"),
    "history": (HistoryBase, "unit/test_redis_parts.py"),
    "authority": (TokenKeeper, "unit/test_redis_parts.py"),
}


@pytest.fixture(scope="module")
def both_kinds(redis_server) -> tuple[Parts, Parts]:
    """The parts of a sandbox in memory, and of one on the session's Redis."""
    memory = Parts.from_config({**DEFAULTS, "STORE": "memory"})
    shared = Parts.from_config({**DEFAULTS, "STORE": redis_server.url, "STORE_NAMESPACE": "parts-test"})
    return memory, shared


def test_every_part_is_named_here():
    assert {field.name for field in dataclasses.fields(Parts)} == set(PARTS)


def state_of(parts: Parts, name: str) -> Any:
    part = getattr(parts, name)
    return part.tokens if name == "authority" else part


@pytest.mark.parametrize("name", sorted(PARTS))
def test_each_part_has_a_kind_for_each_store_meeting_one_specification(both_kinds, name):
    specification, _ = PARTS[name]
    memory, shared = (state_of(parts, name) for parts in both_kinds)

    assert type(memory) is not type(shared)
    # A base class is inherited; a protocol (the store's, the token keeper's) is met member by member.
    members = {member for member in vars(specification) if not member.startswith("_")}
    assert members
    assert members <= set(dir(memory)) and members <= set(dir(shared))
    if not getattr(specification, "_is_protocol", False):
        assert isinstance(memory, specification) and isinstance(shared, specification)


def collected_ids(session: pytest.Session, suites: list[str]) -> list[str]:
    """The test ids of ``suites``: as this session collected them, or, run without them, as a
    collection of their own finds them."""
    wanted = tuple(f"tests/{suite}::" for suite in suites)
    ids = [item.nodeid for item in session.items if item.nodeid.startswith(wanted)]
    if {nodeid.split("::")[0] for nodeid in ids} == {prefix[:-2] for prefix in wanted}:
        return ids
    arguments = ["--collect-only", "-q", "-p", "no:cacheprovider", *(prefix[:-2] for prefix in wanted)]
    found = subprocess.run(
        [sys.executable, "-m", "pytest", *arguments],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return found.stdout.splitlines()


def test_each_part_has_one_suite_run_on_both_kinds(request, both_kinds):
    collected = collected_ids(request.session, sorted({suite for _, suite in PARTS.values()}))

    for name, (_, suite) in PARTS.items():
        ids = [line for line in collected if line.startswith(f"tests/{suite}::")]
        assert any("[memory" in test for test in ids) and any("[redis" in test for test in ids), suite
        # The suite makes each kind itself: it names both classes.
        kinds = {type(state_of(parts, name)).__name__ for parts in both_kinds}
        assert {kind for kind in kinds if kind not in (TESTS / suite).read_text()} == set(), suite
