"""The layers hold: imports point one way, the domain knows nothing of Flask, and no module uses flask.g."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sandbox"

# From the bottom up (docs/architecture.md): a module may import its own layer or those below.
LAYERS = [
    {"errors"},
    {
        "contract",
        "schemas",
        "control_schemas",
        "dumping",
        "formats",
        "jsonstream",
        "clock",
        "settings",
        "shared",
        "turns",
    },
    {
        "accounts",
        "history",
        "profiles",
        "store",
        "redis_store",
        "service",
        "faults",
        "redis_faults",
        "journal",
        "redis_parts",
        "auth",
        "connection",
    },
    {"parts"},
    {
        "record",
        "exchange",
        "pipeline",
        "api",
        "account_api",
        "history_api",
        "control",
        "oauth",
        "openapi",
        "ui",
    },
    {"app"},
    {"__init__", "__main__", "pytest_plugin", "control_client"},
]
# Below the HTTP layer nothing imports Flask, and the domain not even werkzeug (a leaf of the wire
# may: formats.py negotiates with werkzeug's Accept parser).
DOMAIN = LAYERS[2]


def parsed() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def package_imports(tree: ast.Module) -> set[str]:
    """The package's modules a module imports (``from . import x``, ``from .x import y``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            # ``from . import name``: a module, or else a name the package itself (__init__) defines.
            modules = {path.stem for path in PACKAGE.glob("*.py")}
            names = {alias.name if alias.name in modules else "__init__" for alias in node.names}
            found |= {node.module.split(".")[0]} if node.module else names
    return found


def external_imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def layer(module: str) -> int:
    return next(index for index, members in enumerate(LAYERS) if module in members)


def test_every_module_has_a_layer():
    assert set(parsed()) == set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(set().union(*LAYERS)))
def test_imports_point_down(module):
    tree = parsed()[module]

    upward = {imported for imported in package_imports(tree) if layer(imported) > layer(module)}

    assert upward == set()


def test_no_import_cycle():
    graph = {module: package_imports(tree) for module, tree in parsed().items()}
    finished: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        if module in finished:
            return
        for imported in graph[module]:
            visit(imported, (*trail, module))
        finished.add(module)

    for module in graph:
        visit(module, ())


@pytest.mark.parametrize("module", sorted(LAYERS[0] | LAYERS[1] | DOMAIN))
def test_below_the_http_layer_nothing_knows_flask(module):
    forbidden = {"flask", "werkzeug"} if module in DOMAIN else {"flask"}

    assert forbidden & external_imports(parsed()[module]) == set()


def test_no_module_uses_flask_g():
    for module, tree in parsed().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                assert "g" not in {alias.name for alias in node.names}, module
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) != ("flask", "g"), module
