"""In-memory profiles per clientId, with a unique, case-insensitive AlternateId index.

One lock guards every read and write, so concurrent requests never lose or duplicate a profile;
profiles go in and come out as deep copies, so no caller can change stored state behind the lock.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field

from flask import Flask, current_app

from .errors import Conflict, NotFound
from .schemas import alternate_id_pair


@dataclass
class Tenant:
    """One clientId's profiles and its AlternateId index ((type, id) casefolded -> ProfileId)."""

    profiles: dict[int, dict] = field(default_factory=dict)
    alternate_ids: dict[tuple[str, str], int] = field(default_factory=dict)


class ProfileStore:
    """Every clientId's profiles; ProfileIds are unique across the server and increasing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {}
        self._next_id = 1

    def create(self, client_id: str, profile: dict) -> dict:
        """Store a new profile under a fresh ProfileId; 409 if another holds one of its AlternateIds."""
        stored = copy.deepcopy(profile)
        keys = [alternate_id_pair(entry) for entry in stored["AlternateIds"]]
        with self._lock:
            tenant = self._tenants.setdefault(client_id, Tenant())
            for key, entry in zip(keys, stored["AlternateIds"], strict=True):
                if key in tenant.alternate_ids:
                    raise Conflict(
                        f"A profile with AlternateIdType '{entry['AlternateIdType']}' and "
                        f"AlternateId '{entry['AlternateId']}' already exists."
                    )
            stored["ProfileId"] = profile_id = self._next_id
            self._next_id += 1
            tenant.profiles[profile_id] = stored
            tenant.alternate_ids.update((key, profile_id) for key in keys if key is not None)
            return copy.deepcopy(stored)

    def get(self, client_id: str, profile_id: int) -> dict:
        """One profile of ``client_id``; 404 for an unknown id or a profile of another clientId."""
        with self._lock:
            tenant = self._tenants.get(client_id)
            stored = tenant.profiles.get(profile_id) if tenant else None
            if stored is None:
                raise NotFound(f"No profile with ProfileId {profile_id} exists for '{client_id}'.")
            return copy.deepcopy(stored)

    def profiles(self, client_id: str) -> list[dict]:
        """Every profile of ``client_id``, in creation order."""
        with self._lock:
            tenant = self._tenants.get(client_id, Tenant())
            return copy.deepcopy(list(tenant.profiles.values()))


def init_app(app: Flask) -> None:
    """Give ``app`` an empty store."""
    app.extensions["sandbox.store"] = ProfileStore()


def current_store() -> ProfileStore:
    """The store of the application handling the current request."""
    return current_app.extensions["sandbox.store"]
