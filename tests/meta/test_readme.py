"""The README's curl walkthrough, run as written against a fresh sandbox and a used one (every
``# expect:`` must hold), and the container page's Python example, compiled."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from helpers import FIXTURES, Launched, minimal_profile, post_json

ROOT = Path(__file__).resolve().parents[2]
# curl's exit code when the peer resets the connection.
CURL_RECV_ERROR = 56


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    [block] = [block for block in re.findall(r"```sh\n(.*?)```", readme, re.S) if "# expect:" in block]
    return block


def steps(block: str) -> list[tuple[str, str | None]]:
    """(shell line, expected outcome or None for a plain line such as an assignment)."""
    found, expected = [], None
    for line in block.splitlines():
        if line.startswith("# expect:"):
            expected = line.split(":", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            assert ("curl" in line) == (expected is not None), (
                f"every curl (and only a curl) has an expect: {line}"
            )
            found.append((line, expected))
            expected = None
    return found


@pytest.mark.parametrize("used", [False, True], ids=["fresh", "used"])
def test_every_command_of_the_walkthrough_does_what_it_says(used, tmp_path):
    plan = steps(walkthrough())
    script = ["set -u"]
    for index, (line, expected) in enumerate(plan):
        if expected is None:
            script.append(line)
        else:
            script.append(
                f'out=$({line} 2>/dev/null); code=$?; echo "STEP {index} $code $(printf "%s" "$out" | head -1)"'
            )

    # A used sandbox: seeded, and with profiles of another client, which hold the first ProfileIds.
    seeded = ("--seed-file", str(FIXTURES / "seed.json")) if used else ()
    with Launched(*seeded) as launched:
        if used:
            for _ in range(2):
                assert post_json(f"{launched.url}/earlier/Profile", minimal_profile()).status_code == 201
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=ROOT,
            # TMPDIR: the walkthrough's temporary file goes to the test's own folder.
            env={"SANDBOX": launched.url, "PATH": "/usr/bin:/bin:/usr/local/bin", "TMPDIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    outcomes = {}
    for line in result.stdout.splitlines():
        _, index, code, *status = line.split()
        outcomes[int(index)] = (int(code), status[1] if len(status) > 1 else None)
    checked = 0
    for index, (line, expected) in enumerate(plan):
        if expected is None:
            continue
        code, status = outcomes[index]
        if expected == "reset":
            assert code == CURL_RECV_ERROR, line
        else:
            assert (code, status) == (0, expected), line
        checked += 1
    assert checked >= 15


def test_the_testcontainers_example_is_python():
    page = (ROOT / "docs" / "container.md").read_text()
    [section] = re.findall(r"^## From Python, with testcontainers\n(.*?)(?=^## |\Z)", page, re.M | re.S)
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.S)

    compile(snippet, "docs/container.md", "exec")  # a SyntaxError fails the test
    for step in ("DockerContainer(", '"/_sandbox/health"', '"--sandbox-url"'):
        assert step in snippet
