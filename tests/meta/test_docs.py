"""The manual in docs/ builds without a warning, lists every setting as it is, and the README stays a door."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypreferences_sandbox import create_app
from mypreferences_sandbox.contract.operations import operation_name, operation_names
from mypreferences_sandbox.settings import COMMAND_LINE_VARIABLES, PREFIX, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
README_LIMIT = 16 * 1024  # bytes
# Variables the command line reads itself (sandbox/mypreferences_sandbox/__main__.py); they are not settings of create_app.
COMMAND_LINE_ONLY = {f"{PREFIX}{name}" for name in COMMAND_LINE_VARIABLES}


def section(markdown: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next heading of that level."""
    [text] = re.findall(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    return text


def table(text: str) -> dict[str, list[str]]:
    """The rows of the Markdown tables in ``text`` that name a ``SANDBOX_*`` variable: name -> other cells."""
    rows = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if name := re.fullmatch(r"`(SANDBOX_[A-Z_]+)`", cells[0]):
            rows[name.group(1)] = cells[1:]
    return rows


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_the_manual_builds_without_a_warning(tmp_path):
    site = tmp_path / "site"
    command = ["build", "--strict", "--site-dir", str(site), "--config-file", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", *command], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert (site / "configuration" / "index.html").exists()


def test_configuration_page_lists_every_setting_with_its_default():
    page = (ROOT / "docs" / "configuration.md").read_text()

    documented = {name: cells[0].strip("`") for name, cells in table(section(page, "Settings")).items()}

    assert set(documented) == {f"SANDBOX_{key}" for key in SETTINGS}
    for key, (default, _) in SETTINGS.items():
        assert documented[f"SANDBOX_{key}"] == json.dumps(default), key


def test_configuration_page_keeps_the_command_line_variables_apart():
    page = (ROOT / "docs" / "configuration.md").read_text()

    assert set(table(section(page, "Read by the command line only"))) == COMMAND_LINE_ONLY
    assert not COMMAND_LINE_ONLY & {f"SANDBOX_{key}" for key in SETTINGS}


def test_readme_is_short():
    assert (ROOT / "README.md").stat().st_size <= README_LIMIT


def test_readme_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    prose = re.sub(r"^```.*?^```", "", readme, flags=re.M | re.S)  # a "# comment" in a block is no heading
    anchors = {github_anchor(heading) for heading in re.findall(r"^#+ (.+)$", prose, re.M)}
    links = [link for link in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in link]

    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path, _, anchor = link.partition("#")
        if path:
            assert (ROOT / path).is_file(), link
        else:
            assert anchor in anchors, link


# The operation tables: `name` | `METHOD /path?query` | what it does.
ROW = re.compile(r"^\| `(?P<name>\w+)` \| `(?P<method>[A-Z]+) (?P<path>/[^`?]*)[^`]*` \|", re.M)


def routes() -> dict[tuple[str, str], str]:
    """(METHOD, path with {} for each parameter) -> operation name, for every root route of the app."""
    app = create_app()
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("prefixed_"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found[(method, re.sub(r"<[^>]+>", "{}", rule.rule))] = operation_name(rule.endpoint)
    return found


@pytest.mark.parametrize(
    ("page", "plane"),
    [("README.md", "vendor"), ("README.md", "control"), ("docs/endpoints.md", "vendor"),
     ("docs/control-plane.md", "control")],
)  # fmt: skip
def test_operation_tables_name_every_operation_of_the_plane_by_its_route(page, plane):
    served, app = routes(), create_app()
    rows = [
        (row["name"], (row["method"], re.sub(r"\{[^}]+\}", "{}", row["path"])))
        for row in ROW.finditer((ROOT / page).read_text())
    ]
    listed = {name for name, _ in rows if name in operation_names(app.view_functions, plane)}

    assert listed == operation_names(app.view_functions, plane)
    for name, route in rows:
        assert served.get(route) == name, (name, route)
