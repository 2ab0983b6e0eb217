"""The README's curl walkthrough, run as written against a fresh sandbox: every ``# expect:`` must hold."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from helpers import Launched

ROOT = Path(__file__).resolve().parent.parent
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


def test_every_command_of_the_walkthrough_does_what_it_says():
    plan = steps(walkthrough())
    script = ["set -u"]
    for index, (line, expected) in enumerate(plan):
        if expected is None:
            script.append(line)
        else:
            script.append(
                f'out=$({line} 2>/dev/null); code=$?; echo "STEP {index} $code $(printf "%s" "$out" | head -1)"'
            )

    with Launched() as launched:
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=ROOT,
            env={"SANDBOX": launched.url, "PATH": "/usr/bin:/bin:/usr/local/bin"},
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
