"""Shared fixtures: one sandbox served over real HTTP for the session, and a fresh clientId per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from helpers import STORES, Launched, Served, store_config
from mypreferences_sandbox.testing.control_client import ControlClient
from redis_server import RedisServer


@pytest.fixture(scope="session", params=STORES)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The sandbox every black-box test runs against: once on each store, in memory and on Redis."""
    with Served(store_config(request, "tests")) as served:
        yield served


@pytest.fixture
def base_url(served: Served) -> str:
    return served.url


@pytest.fixture
def client_id() -> str:
    """A clientId no other test uses, so tests sharing the server never see each other's data."""
    return f"client-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def profile_url(base_url: str, client_id: str) -> str:
    return f"{base_url}/{client_id}/Profile"


@pytest.fixture
def control(served: Served, client_id: str) -> Iterator[ControlClient]:
    """The control plane of the shared server; the test's clientId is reset afterwards."""
    client = ControlClient(served.url)
    yield client
    client.reset(client_id=client_id)


@pytest.fixture(scope="session")
def launched() -> Iterator[Launched]:
    """The command line's server (gunicorn), started once for the session."""
    with Launched() as launched:
        yield launched


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server, started once for the session; each user takes its own namespace."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def connection(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's redis-server."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def namespace() -> str:
    """A namespace of the session's Redis that no other test uses."""
    return uuid.uuid4().hex


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reaches the session's redis-server carries the ``redis`` marker, however it
    reaches it: a store parameter of ``helpers.STORES`` marks itself; a fixture asking for the
    server by name is marked here, so ``-m 'not redis'`` leaves out every test that needs Redis."""
    for item in items:
        if "redis_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
