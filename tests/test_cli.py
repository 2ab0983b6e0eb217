"""The command line, run as a real process and spoken to over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from helpers import fixture_bytes, vendor


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serves_on_the_printed_url_until_stopped(stop):
    with start("--host", "127.0.0.1", "--port", "0") as process:
        line = process.stdout.readline()
        url = re.fullmatch(r"mypreferences-sandbox serving on (http://127\.0\.0\.1:\d+)\n", line)[1]
        created = vendor.post(
            f"{url}/Profiles/acme/Profile",
            data=fixture_bytes("create-profile.xml"),
            headers={"Content-Type": "application/xml"},
            timeout=10,
        )
        process.send_signal(stop)
        process.communicate(timeout=10)

    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{url}/Profiles/acme/Profile/")
    assert process.returncode in (0, -stop)


def test_console_script_explains_its_options():
    result = subprocess.run(["mypreferences-sandbox", "--help"], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0
    assert "--host" in result.stdout
    assert "--port" in result.stdout
    assert "SANDBOX_" in result.stdout


def test_environment_gives_host_and_port():
    with start(env={"SANDBOX_HOST": "127.0.0.1", "SANDBOX_PORT": "0"}) as process:
        line = process.stdout.readline()
        process.terminate()
        process.communicate(timeout=10)

    assert re.fullmatch(r"mypreferences-sandbox serving on http://127\.0\.0\.1:\d+\n", line)


def test_unusable_setting_is_a_one_line_error():
    with start("--port", "0", env={"SANDBOX_MAX_CONTENT_LENGTH": "0"}) as process:
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert stderr == "mypreferences-sandbox: SANDBOX_MAX_CONTENT_LENGTH must be a positive integer, not 0\n"


def test_busy_port_is_an_error_without_a_traceback():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with start("--port", str(holder.getsockname()[1])) as process:
            _, stderr = process.communicate(timeout=30)

    assert process.returncode != 0
    assert "in use" in stderr
    assert "Traceback" not in stderr
