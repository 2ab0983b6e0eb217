"""State kept in Redis, shared by every process of one sandbox: the connection and the key names.

Imported only when a Redis store is configured, after the command line has made blocking calls
cooperative: the Redis client imports ``ssl``, which gevent must patch first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis
import redis.cluster
from redis.client import Pipeline

# Failures that mean the store cannot be reached, or not written, now: a 503 in the vendor's
# shape, never a 500 (BusyLoadingError, a Redis still loading its data, is a ConnectionError).
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,  # full, with maxmemory and no eviction: writes are refused
)
# Inside a script, a full Redis's refusal comes back as a plain error, known by its words.
FULL = "OOM command not allowed"


def unreachable(error: Exception) -> bool:
    """Whether a Redis error means that the store cannot be reached or written now (a 503), rather
    than a fault of the sandbox's (a 500)."""
    return isinstance(error, UNAVAILABLE) or (isinstance(error, redis.ResponseError) and FULL in str(error))


def connect(url: str, timeout: float) -> redis.Redis:
    """A client of the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``; a cluster:
    ``redis+cluster://`` one of its nodes) whose every call ends within ``timeout`` seconds."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "decode_responses": False}
    if url.startswith("redis+cluster://"):
        node = "redis://" + url.removeprefix("redis+cluster://")
        cluster = redis.cluster.RedisCluster.from_url(node, **options)
        return cluster  # type: ignore[return-value]  # the commands the sandbox uses are the same
    return redis.Redis.from_url(url, health_check_interval=30, **options)


@dataclass(frozen=True)
class Shared:
    """One sandbox's place in a Redis: the connection, and the names of its keys.

    The keys of one clientId share one Redis Cluster hash slot: the clientId, prefixed by its
    length, is their hash tag, so that a clientId holding any character is never named like another
    and one script may touch all of a clientId's keys. The server-wide keys share another slot.
    ``namespace`` keeps sandboxes apart in one Redis."""

    redis: redis.Redis
    namespace: str = "mps"

    def server_key(self, name: str) -> str:
        """A server-wide key (the clock, the fault rules, the journal, the ProfileId sequence)."""
        return f"{{{self.namespace}}}:{name}"

    def client_key(self, client_id: str, name: str) -> str:
        """A key of one clientId."""
        return f"{{{self.namespace}:{len(client_id)}:{client_id}}}:{name}"

    def register(self, part: str, client_id: str, pipeline: Pipeline | None = None) -> None:
        """Note that ``part`` holds data of ``client_id``, for a full reset or an export to find
        (in ``pipeline``, if given). Called after each write, not before, and every time: a full
        reset that takes the list between the two leaves the write standing, and its client listed
        for the next one."""
        (pipeline or self.redis).sadd(self.server_key(f"clients:{part}"), client_id)

    def clients(self, part: str) -> Iterator[str]:
        """The clientIds ``part`` may hold data of (a superset: a reset client may stay listed)."""
        for member in self.redis.sscan_iter(self.server_key(f"clients:{part}"), count=1000):
            yield member.decode()

    def take_clients(self, part: str) -> Iterator[str]:
        """The clientIds ``part`` holds data of, its list emptied at once (for a full reset): a client
        registered meanwhile goes into a new list, and is not lost to the next reset."""
        listed, taken = (
            self.server_key(f"clients:{part}"),
            self.server_key(f"clients:{part}:{uuid.uuid4().hex}"),
        )
        try:
            self.redis.rename(listed, taken)
        except redis.ResponseError:  # no such key: no client to reset
            return
        try:
            for member in self.redis.sscan_iter(taken, count=1000):
                yield member.decode()
        finally:
            self.redis.unlink(taken)
