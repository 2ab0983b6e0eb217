"""The layers hold: each subpackage imports only its own layer and those below, views stay apart,
the domain knows nothing of Flask, and no module uses flask.g. The package is parsed once."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "sandbox"
PACKAGE = "mypreferences_sandbox"

# From the bottom up (docs/architecture.md): a module may import its own group, or a group of a
# lower layer; groups of one layer (the views and the servers) never import each other. A group is
# a subpackage, or a module at the package's top.
LAYERS = [
    {"contract", "settings", "turns"},
    {"wire"},
    {"domain"},
    {"redis"},
    {"parts"},
    {"http"},
    {"api", "control", "serving"},
    {"app"},
    {"__init__", "__main__", "testing"},
]
# Below the HTTP layer nothing imports Flask, and the domain not even werkzeug (the wire may:
# formats negotiates with werkzeug's Accept parser).
NO_FLASK = {"contract", "settings", "turns", "wire", "domain", "redis"}
NO_WERKZEUG = {"contract", "settings", "turns", "domain", "redis"}
# The view modules share what they need through these, and never reach into each other.
SHARED_BY_VIEWS = {f"{PACKAGE}.api.common"}


@functools.cache
def parsed() -> dict[str, ast.Module]:
    """Every module of the package by its dotted name, parsed once for the whole session."""
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(), str(path))
    return modules


def is_package(name: str) -> bool:
    return (ROOT / name.replace(".", "/") / "__init__.py").exists()


def resolved(module: str, node: ast.ImportFrom) -> set[str]:
    """The package's modules that ``from ... import ...`` in ``module`` imports."""
    here = module.split(".") if is_package(module) else module.split(".")[:-1]
    base = here[: len(here) - node.level + 1] if node.level else []
    target = ".".join([*base, *(node.module.split(".") if node.module else [])])
    if not target.startswith(PACKAGE):
        return set()
    # ``from pkg import name``: the module pkg.name where there is one, else pkg itself.
    names = {f"{target}.{alias.name}" for alias in node.names}
    return {name if name in parsed() else target for name in names}


@functools.cache
def package_imports(module: str) -> frozenset[str]:
    """The package's modules ``module`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(parsed()[module]):
        if isinstance(node, ast.ImportFrom):
            found |= resolved(module, node)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(PACKAGE)}
    return frozenset(found - {module})


def external_imports(module: str) -> set[str]:
    found = set()
    for node in ast.walk(parsed()[module]):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - {PACKAGE}


def group(module: str) -> str:
    """The group of a module: its subpackage, or itself at the package's top."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def layer(module: str) -> int:
    return next(index for index, members in enumerate(LAYERS) if group(module) in members)


def views(subpackage: str) -> set[str]:
    """The view modules of a subpackage: those defining a blueprint, ``bp``."""
    return {
        name
        for name, tree in parsed().items()
        if name.startswith(f"{PACKAGE}.{subpackage}.")
        and any(
            isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "bp" for t in node.targets)
            for node in tree.body
        )
    }


def test_every_module_has_a_layer():
    assert {group(module) for module in parsed()} == set().union(*LAYERS)


def test_every_subpackage_says_what_it_may_import():
    for name, tree in parsed().items():
        if is_package(name) and name != PACKAGE:
            docstring = ast.get_docstring(tree) or ""
            assert "import" in docstring.lower(), name


@pytest.mark.parametrize("module", sorted(parsed()))
def test_imports_point_down(module):
    upward = {
        imported
        for imported in package_imports(module)
        if layer(imported) > layer(module)
        # Beside it: only its own group, or the package's face (the version, for the entry points).
        or (layer(imported) == layer(module) and group(imported) != group(module) and imported != PACKAGE)
    }

    assert upward == set()


def test_no_import_cycle():
    finished: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        if module in finished:
            return
        for imported in package_imports(module):
            # A package's __init__ runs before its modules: importing one imports it too, so an
            # __init__ that imports nothing of the package is where every such trail ends.
            visit(imported, (*trail, module))
        finished.add(module)

    for module in parsed():
        visit(module, ())


@pytest.mark.parametrize("subpackage", ["api", "control"])
def test_a_view_module_never_imports_another(subpackage):
    modules = views(subpackage)
    assert modules, f"no view module found in {subpackage}"

    reaching = {
        (module, imported)
        for module in modules
        for imported in package_imports(module)
        if group(imported) == subpackage and imported != module and imported not in SHARED_BY_VIEWS
    }

    assert reaching == set()


def test_the_dashboard_reads_through_the_service():
    """The dashboard shows what the vendor's API would: read through the profile service, never
    from the store (nor from anything of the domain but its reports)."""
    module = f"{PACKAGE}.control.dashboard"
    reached = {
        node.attr
        for node in ast.walk(parsed()[module])
        if isinstance(node, ast.Attribute) and node.attr == "store"
    }

    assert reached == set()
    assert {
        imported for imported in package_imports(module) if group(imported) in {"domain", "redis"}
    } == set()


def test_only_the_parts_import_the_redis_store():
    importers = {
        module
        for module in parsed()
        if group(module) != "redis"
        and any(group(imported) == "redis" for imported in package_imports(module))
    }

    assert importers == {f"{PACKAGE}.parts"}


def test_the_control_client_works_without_the_server():
    """It is used against a sandbox in a container: of the package it takes only the contract."""
    imported = package_imports(f"{PACKAGE}.testing.control_client")

    assert {group(module) for module in imported} <= {"contract", "__init__"}


@pytest.mark.parametrize("module", sorted(m for m in parsed() if group(m) in NO_FLASK))
def test_below_the_http_layer_nothing_knows_flask(module):
    forbidden = {"flask", "werkzeug"} if group(module) in NO_WERKZEUG else {"flask"}

    assert forbidden & external_imports(module) == set()


def test_no_module_uses_flask_g():
    for module, tree in parsed().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                assert "g" not in {alias.name for alias in node.names}, module
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) != ("flask", "g"), module
