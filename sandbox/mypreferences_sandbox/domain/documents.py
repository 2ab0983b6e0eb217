"""State documents (an export, an import, the seed file): each client's profiles and its account's
configuration, one document; an import is checked whole before anything changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from ..contract import schemas
from ..contract.control_schemas import PAYLOAD_INVALID, StateSchema
from ..contract.errors import BadRequest
from .accounts import KINDS, AccountsBase, configured
from .profiles import Account, Editor
from .service import ProfileService

STATE = StateSchema()


def importer(config: Mapping[str, Any], now: datetime) -> Callable[[str], Editor]:
    """Who writes an imported client's profiles: the default user, at one moment for the whole document."""
    return lambda client_id: Editor(Account.from_config(config, client_id), config["DEFAULT_USER"], now)


class StateDocuments:
    """State documents over a profile service and the accounts: what a sandbox exports and imports."""

    def __init__(self, service: ProfileService, accounts: AccountsBase) -> None:
        self.service = service
        self.accounts = accounts

    def export(self, client_id: str | None = None) -> dict:
        """The state document of every client (or one): its profiles and its account's configuration."""
        return {"clients": self.service.export(client_id), "accounts": self.accounts.export(client_id)}

    def apply(
        self,
        clients: Iterable[tuple[str, Any]],
        rest: Callable[[], Mapping[str, Any]],
        editor_for: Callable[[str], Editor],
    ) -> dict:
        """Import a state document, read as it arrives: ``clients`` yields each client's id and its
        profiles; ``rest`` gives the document's other members (its ``accounts``) once every client
        is read. Each client's profiles are replaced, each account's kinds configured. 400 naming
        every problem, 409 for a ProfileId or AlternateId used twice; nothing changes on an error."""
        accounts: dict[str, Any] = {}

        def checked() -> Iterator[tuple[str, Any]]:
            seen: set[str] = set()
            for client_id, profiles in clients:
                listed = isinstance(profiles, list | Iterator)
                schemas.load(
                    STATE, {"clients": {client_id: [] if listed else profiles}}, message=PAYLOAD_INVALID
                )
                if client_id in seen:
                    raise BadRequest(PAYLOAD_INVALID, model_state={f"clients.{client_id}": ["Named twice."]})
                seen.add(client_id)
                yield client_id, profiles
            accounts.update(_accounts(rest()))  # before the store puts anything in

        imported = self.service.import_state(checked(), editor_for)
        for client, account in accounts.items():
            self.accounts.configure(client, account)
        return {"imported": imported, "accounts": sorted(accounts)}


def _accounts(rest: Mapping[str, Any]) -> dict[str, Any]:
    """The accounts of a state document's members but its clients, each a configuration of kinds
    of types; 400 naming every problem (an unknown member, an unusable account)."""
    document = schemas.load(STATE, dict(rest), message=PAYLOAD_INVALID)
    problems = {}
    for client, account in document["accounts"].items():
        others = sorted(set(account) - set(KINDS))
        if others:  # an account's other settings belong to SANDBOX_ACCOUNTS
            problems[f"accounts.{client}"] = [f"Not a kind of types: {', '.join(others)}."]
            continue
        try:
            configured(account)
        except ValueError as error:
            problems[f"accounts.{client}"] = [str(error)]
    if problems:
        raise BadRequest("The state document is invalid.", model_state=problems)
    return document["accounts"]  # type: ignore[no-any-return]
