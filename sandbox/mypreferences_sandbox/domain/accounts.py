"""Each clientId's account configuration: the types its profiles may name, and their localized names.

As at the vendor, an account has AlternateId, address, email, phone, customer and group types,
consent types, custom fields and tags. A kind that was configured (by the settings, a state
document, the control plane or the vendor's own configuration operations) is closed: a body that
names a type it lacks is a 404. A kind nobody configured is open, so that curl works out of the
box: an unknown type is registered as it is met, with a warning, and stays open.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..contract.errors import Conflict, NotFound

# Each kind, and where a profile document names a type of it: (collection or None, member).
KINDS: dict[str, tuple[str | None, str]] = {
    "AlternateIdTypes": ("AlternateIds", "AlternateIdType"),
    "AddressTypes": ("Addresses", "AddressType"),
    "EmailTypes": ("Emails", "EmailAddressType"),
    "PhoneTypes": ("PhoneNumbers", "PhoneType"),
    "CustomerTypes": (None, "CustomerType"),
    "GroupTypes": ("Groups", "GroupType"),
    "ConsentTypes": ("Consents", "ConsentType"),
    "CustomFields": ("CustomFields", "Name"),
    "Tags": ("ProfileTags", "Name"),
}
# The locale of a type's own Name and Description.
DEFAULT_LOCALE = "en-us"
T = TypeVar("T")


@dataclass
class Kind:
    """The types of one kind in one account: each a dict of Id, Name, Description and Locales
    (locale: {Name, Description}); ``closed`` once configured. Types are added by ``add`` only,
    which keeps the list and its index by name in step."""

    closed: bool = False
    types: list[dict] = field(default_factory=list)
    # Each type by its casefolded Name, beside the ordered list: a body names thousands of types,
    # each looked up once, and a scan of the list per look-up made such a body quadratic.
    _by_name: dict[str, dict] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for entry in self.types:
            self._by_name.setdefault(entry["Name"].casefold(), entry)

    def find(self, name: str) -> dict | None:
        """The type of this name (case ignored), or None."""
        return self._by_name.get(name.casefold())

    def add(self, name: str, description: str | None = None, locales: Mapping | None = None) -> dict:
        """A new type, numbered after the others."""
        entry = {
            "Id": len(self.types) + 1,
            "Name": name,
            "Description": description,
            "Locales": {key.casefold(): dict(value) for key, value in (locales or {}).items()},
        }
        self.types.append(entry)
        # Of two names alike (nothing here refuses them), the first stays the one found.
        self._by_name.setdefault(name.casefold(), entry)
        return entry


def configured(document: Mapping[str, Any]) -> dict[str, Kind]:
    """The kinds an account document configures (``{"AlternateIdTypes": ["CRM", {"Name": ...}]}``),
    each closed; ValueError naming what is unusable."""
    kinds = {}
    for name, entries in document.items():
        if name not in KINDS:
            continue  # the account's other settings (DefaultLocale, ...)
        if not isinstance(entries, list):
            raise ValueError(f"{name} must be a list of names or of {{Name, Description, Locales}}")
        kind = kinds[name] = Kind(closed=True)
        for entry in entries:
            given: Any = {"Name": entry} if isinstance(entry, str) else entry
            if not isinstance(given, Mapping) or not isinstance(given.get("Name"), str) or not given["Name"]:
                raise ValueError(f"{name}: each entry needs a Name, not {entry!r}")
            where = f"{name} {given['Name']!r}"
            if not isinstance(given.get("Description"), str | None):
                raise ValueError(
                    f"{where}: Description must be a string or null, not {given['Description']!r}"
                )
            locales = given.get("Locales") or {}
            if not isinstance(locales, Mapping) or not all(
                isinstance(names, Mapping)
                and all(isinstance(names.get(key, ""), str) for key in ("Name", "Description"))
                for names in locales.values()
            ):
                raise ValueError(
                    f"{where}: Locales maps a locale to its {{Name, Description}} (strings), not {locales!r}"
                )
            if kind.find(given["Name"]) is None:
                kind.add(given["Name"], given.get("Description"), given.get("Locales"))
    return kinds


def baseline(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Kind]]:
    """The kinds the settings configure, by clientId (ValueError naming the setting if unusable)."""
    accounts = {}
    for client, document in settings.items():
        try:
            accounts[client] = configured(document)
        except ValueError as error:
            raise ValueError(f"SANDBOX_ACCOUNTS.{client}: {error}") from None
    return accounts


class AccountsBase(ABC):
    """Every clientId's account configuration, by the rules here, kept where a subclass keeps it."""

    # What the settings configure comes back on each reset; what the sandbox learns at run time
    # (state documents, the control plane, configuration operations, types registered in open
    # kinds) is forgotten by one.

    @abstractmethod
    def _look(
        self, client_id: str, names: Collection[str] | None, look: Callable[[Mapping[str, Kind]], T]
    ) -> T:
        """What ``look`` finds in the account's kinds ``names`` (None: all; one it lacks: open, empty),
        as one moment holds them; ``look`` changes none of them."""

    @abstractmethod
    def _change(self, client_id: str, names: Collection[str], change: Callable[[Mapping[str, Kind]], T]) -> T:
        """What ``change`` returns, having changed the account's kinds ``names`` (one it lacks: open,
        empty) in one step; it may run more than once, and raises, if it does, before changing any."""

    @abstractmethod
    def _replace(self, client_id: str, kinds: Mapping[str, Kind]) -> None:
        """Put ``kinds`` in the account, in place of any of the same names."""

    @abstractmethod
    def _clients(self) -> list[str]:
        """Every clientId that may have an account."""

    @abstractmethod
    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Back to the settings' configuration: every account, or ``client_id``'s."""

    def types(self, client_id: str, kind: str, *, type_id: int = 0, locale: str | None = None) -> list[dict]:
        """The types of ``kind`` (or the one of ``type_id``), named in ``locale``; 404 for an unknown
        Id, or a locale no type of the kind has."""
        found = self._look(
            client_id, [kind], lambda kinds: [dict(t) for t in kinds[kind].types if type_id in (0, t["Id"])]
        )
        if type_id and not found:
            raise NotFound(f"No {kind[:-1]} with Id {type_id} exists for '{client_id}'.")
        if locale is None or locale.casefold() == DEFAULT_LOCALE:
            return [_shown(t, None) for t in found]
        if not any(locale.casefold() in t["Locales"] for t in found):
            raise NotFound(f"No {kind[:-1]} has the locale '{locale}'.")
        return [_shown(t, locale.casefold()) for t in found if locale.casefold() in t["Locales"]]

    def create(self, client_id: str, kind: str, entries: Iterable[Mapping[str, Any]]) -> list[dict]:
        """Configure new types of ``kind`` (closing it); 409 if one exists or two are named alike
        (case ignored, as everywhere), and then none is added."""
        wanted = list(entries)

        def add(kinds: Mapping[str, Kind]) -> list[dict[str, Any]]:
            current = kinds[kind]
            seen: set[str] = set()
            for entry in wanted:
                name = entry["Name"]
                if current.find(name) is not None:
                    raise Conflict(f"The {kind[:-1]} '{name}' already exists for '{client_id}'.")
                if name.casefold() in seen:
                    raise Conflict(f"The {kind[:-1]} '{name}' appears more than once (case ignored).")
                seen.add(name.casefold())
            current.closed = True
            return [
                _shown(current.add(e["Name"], e.get("Description"), e.get("Locales")), None) for e in wanted
            ]

        return self._change(client_id, [kind], add)

    def check(
        self, client_id: str, document: Mapping[str, Any], held: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """The types a profile document names that its account lacks, as (kind, name): 404 if a
        closed kind lacks one, naming it; those of open kinds are for ``register``, once the
        write they come with has succeeded. Types the profile already ``held`` are not checked:
        a write that leaves them as they were introduces nothing."""
        named = list(_named(document))
        if not named:
            return []
        kept = {(kind, name.casefold()) for kind, name in _named(held or {})}

        def lacking(kinds: Mapping[str, Kind]) -> list[tuple[str, str]]:
            # A dict, not a list, so that asking whether a name was met already is O(1); it keeps
            # the order the names were met in, which is the order ``register`` adds them.
            unknown: dict[tuple[str, str], None] = {}
            for kind, name in named:
                current = kinds[kind]
                if (
                    current.find(name) is not None
                    or (kind, name) in unknown
                    or (kind, name.casefold()) in kept
                ):
                    continue
                if current.closed:
                    member = KINDS[kind][1]
                    raise NotFound(f"The {member} '{name}' is not configured for '{client_id}' ({kind}).")
                unknown[kind, name] = None
            return list(unknown)

        return self._look(client_id, {kind for kind, _ in named}, lacking)

    def register(self, client_id: str, unknown: Iterable[tuple[str, str]]) -> list[str]:
        """Record types of open kinds as they were met; a warning for each."""
        met = list(unknown)
        if not met:
            return []

        def add(kinds: Mapping[str, Kind]) -> list[str]:
            warnings = []
            for kind, name in met:
                current = kinds[kind]
                if current.find(name) is None:
                    current.add(name)
                    warnings.append(f"registered {KINDS[kind][1]} '{name}' in the open account '{client_id}'")
            return warnings

        return self._change(client_id, {kind for kind, _ in met}, add)

    def configure(self, client_id: str, document: Mapping[str, Any]) -> None:
        """Replace the kinds ``document`` configures for ``client_id`` (ValueError if unusable)."""
        self._replace(client_id, configured(document))

    def export(self, client_id: str | None = None) -> dict[str, dict]:
        """The configured kinds of every account (or one), as ``configure`` takes them."""
        chosen = [client_id] if client_id is not None else sorted(self._clients())
        exported = {client: self._look(client, None, _exported) for client in chosen}
        return {client: kinds for client, kinds in exported.items() if kinds}


class Accounts(AccountsBase):
    """Every clientId's account configuration, in this process."""

    def __init__(self, settings: Mapping[str, Mapping[str, Any]]) -> None:
        self._lock = threading.Lock()
        self._baseline = baseline(settings)
        self._accounts: dict[str, dict[str, Kind]] = copy.deepcopy(self._baseline)

    def _look(
        self, client_id: str, names: Collection[str] | None, look: Callable[[Mapping[str, Kind]], T]
    ) -> T:
        with self._lock:
            account = self._accounts.get(client_id, {})
            return look(account if names is None else {name: account.get(name, Kind()) for name in names})

    def _change(self, client_id: str, names: Collection[str], change: Callable[[Mapping[str, Kind]], T]) -> T:
        with self._lock:
            account = self._accounts.setdefault(client_id, {})
            return change({name: account.setdefault(name, Kind()) for name in names})

    def _replace(self, client_id: str, kinds: Mapping[str, Kind]) -> None:
        with self._lock:
            self._accounts.setdefault(client_id, {}).update(kinds)

    def _clients(self) -> list[str]:
        with self._lock:
            return list(self._accounts)

    def reset(self, client_id: str | None = None, *, seed: int | None = None) -> None:
        """Back to the settings' configuration: every account, or ``client_id``'s."""
        with self._lock:
            if client_id is None:
                self._accounts = copy.deepcopy(self._baseline)
            elif client_id in self._baseline:
                self._accounts[client_id] = copy.deepcopy(self._baseline[client_id])
            else:
                self._accounts.pop(client_id, None)


def _exported(kinds: Mapping[str, Kind]) -> dict[str, list[dict[str, Any]]]:
    """An account's closed kinds, as ``configure`` takes them."""
    return {
        name: [{k: t[k] for k in ("Name", "Description", "Locales")} for t in kind.types]
        for name, kind in kinds.items()
        if kind.closed
    }


def _named(document: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(kind, name) for every type a profile document names."""
    for kind, (collection, member) in KINDS.items():
        entries = [document] if collection is None else document.get(collection) or []
        for entry in entries:
            name = entry.get(member) if isinstance(entry, Mapping) else None
            if isinstance(name, str) and name.strip():
                yield kind, name


def _shown(entry: Mapping[str, Any], locale: str | None) -> dict:
    """A type as the vendor answers it: Id, Name and Description, in ``locale`` (None: its own)."""
    names = entry["Locales"].get(locale, {}) if locale else {}
    return {
        "Id": entry["Id"],
        "Name": names.get("Name", entry["Name"]),
        "Description": names.get("Description", entry["Description"]),
    }
