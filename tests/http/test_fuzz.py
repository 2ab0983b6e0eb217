"""Fuzzing with the OpenAPI document as the contract: schemathesis generates requests from
/_sandbox/openapi.json and sends them over real HTTP to sandboxes of this module's own; no answer may
be a 5xx (``not_a_server_error``) or break the schema the document gives it
(``response_schema_conformance``).

Bounded and derandomized, so that every run sends the same requests: ``FUZZ_EXAMPLES`` cases per
operation and generation mode (positive, negative) and as many stateful scenarios of ``FUZZ_STEPS``
calls; ``FUZZ_SEED`` picks another set, ``FUZZ_COVERAGE=1`` adds schemathesis's coverage phase (every
boundary value of every field: about 30,000 requests). docs/development.md gives the command.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator

import hypothesis
import pytest
import requests
import schemathesis
from helpers import Served
from mypreferences_sandbox.domain.auth import pnauthinfo3_header
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
STEPS = int(os.environ.get("FUZZ_STEPS", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20261129"))
COVERAGE = os.environ.get("FUZZ_COVERAGE") == "1"
CHECKS = [not_a_server_error, response_schema_conformance]
# Fault rules fire on vendor and OAuth requests: an injected 5xx, a delay, a hang or a broken
# connection would fail the run for what it was asked to do. Their operations are fuzzed on a sandbox
# of their own that no vendor or OAuth request reaches, so that no rule ever fires.
FAULTS = "^/_sandbox/faults"

# Every request of the run: its operation and status.
SENT: defaultdict[str, Counter[int]] = defaultdict(Counter)


def document(served: Served) -> dict:
    return requests.get(f"{served.url}/_sandbox/openapi.json", timeout=10).json()


def load(served: Served) -> schemathesis.BaseSchema:
    """The served document, with the run's settings:
    derandomized, bounded, no example database, and no Authorization generated from the security
    schemes (``signed`` gives every request its own)."""
    settings = {
        "seed": SEED,
        "base-url": served.url,
        "generation": {
            "max-examples": EXAMPLES,
            "deterministic": True,
            "database": "none",
            "with-security-parameters": False,
        },
        "phases": {
            "coverage": {"enabled": COVERAGE},
            # The scenarios follow the document's links only, so that they test them.
            "stateful": {"inference": {"algorithms": []}},
        },
    }
    return schemathesis.openapi.from_dict(document(served), config=schemathesis.Config.from_dict(settings))


def signed(served: Served) -> dict[str, str]:
    """A fresh Authorization at the sandbox's own time, which a fuzzed PUT /_sandbox/clock moves:
    lenient mode checks its timestamp, not its signature. Control and OAuth calls ignore it."""
    moment = served.app.extensions["sandbox"].clock.now()
    return {"Authorization": pnauthinfo3_header("any", "fuzz", "x", moment)}


@pytest.fixture(scope="module")
def api_sandbox() -> Iterator[Served]:
    """For the vendor API, OAuth and the control plane but fault rules: the resets, clock moves and
    imports of the run are this sandbox's, never the shared one's."""
    with Served() as served:
        yield served


@pytest.fixture(scope="module")
def fault_sandbox() -> Iterator[Served]:
    """For the fault rules' operations only."""
    with Served() as served:
        yield served


@pytest.fixture(scope="module")
def api_schema(api_sandbox: Served) -> schemathesis.BaseSchema:
    return load(api_sandbox)


@pytest.fixture(scope="module")
def fault_schema(fault_sandbox: Served) -> schemathesis.BaseSchema:
    return load(fault_sandbox)


# The filters go here: a lazily loaded schema takes these, not those of the fixture's schema.
api = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=FAULTS)
faults = schemathesis.pytest.from_fixture("fault_schema").include(path_regex=FAULTS)


def call(case: schemathesis.Case, served: Served) -> None:
    response = case.call(headers=signed(served))
    SENT[case.operation.label][response.status_code] += 1
    case.validate_response(response, checks=CHECKS)


@api.parametrize()
def test_the_api_answers_as_documented(case, api_sandbox):
    call(case, api_sandbox)


@faults.parametrize()
def test_the_fault_rule_operations_answer_as_documented(case, fault_sandbox):
    call(case, fault_sandbox)


def scenarios(schema: schemathesis.BaseSchema, served: Served) -> Counter[str]:
    """Run stateful scenarios, each a create (of a profile, of a fault rule) and calls along the
    document's links from it; the operations that answered 2xx in them, by label."""
    succeeded: Counter[str] = Counter()

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self):
            # Each scenario from a fresh sandbox, so that the same calls get the same answers: else
            # Hypothesis finds its data generation inconsistent (a create that now conflicts).
            requests.post(f"{served.url}/_sandbox/reset", timeout=10).raise_for_status()

        def get_call_kwargs(self, case):
            return {"headers": signed(served)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            SENT[case.operation.label][response.status_code] += 1
            if response.status_code < 300:
                succeeded[case.operation.label] += 1
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    hypothesis.seed(SEED)(Scenarios).run(
        settings=hypothesis.settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            database=None,
            # Generation only, as schemathesis runs its scenarios: replaying one against a server
            # whose state has moved on does not reproduce it.
            phases=[hypothesis.Phase.generate],
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    return succeeded


def test_api_scenarios_reach_the_profiles_they_create(api_schema, api_sandbox):
    succeeded = scenarios(api_schema.exclude(path_regex=FAULTS), api_sandbox)

    assert {label for label in succeeded if "{profileId}" in label or "{alternateId}" in label}


def test_fault_rule_scenarios_reach_the_rules_they_add(fault_schema, fault_sandbox):
    succeeded = scenarios(fault_schema.include(path_regex=FAULTS), fault_sandbox)

    assert {label for label in succeeded if "{ruleId}" in label}
