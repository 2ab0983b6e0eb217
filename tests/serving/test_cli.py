"""The command line, run as a real process and spoken to over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import pytest
import redis
import requests
from helpers import FIXTURES, Launched, fixture_bytes, minimal_profile, post_json, send, vendor
from mypreferences_sandbox.__main__ import store_shown
from mypreferences_sandbox.testing.control_client import ControlClient
from redis_server import RedisServer


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mypreferences_sandbox", *args],
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
    # By the path pip installed it at, beside this interpreter: PATH may not hold the venv's bin.
    script = Path(sys.executable).with_name("mypreferences-sandbox")

    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0
    for option in ("--host", "--port", "--max-connections", "--header-timeout", "--body-timeout"):
        assert option in result.stdout
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file or directory"),
        ("{", "The body is not valid JSON"),
        ('{"clients": {"acme": [{"Emails": [{}]}]}}', "EmailAddress"),
    ],
)
def test_unusable_seed_file_is_a_one_line_error(tmp_path, content, message):
    seed = tmp_path / "seed.json"
    if content is not None:
        seed.write_text(content)

    with start("--port", "0", "--seed-file", str(seed)) as process:
        stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert stdout == ""  # never said to be serving
    [line] = stderr.splitlines()
    assert line.startswith(f"mypreferences-sandbox: SANDBOX_SEED_FILE {seed}: ")
    assert message in line


# The command line, saying on stderr which process opens the seed file and which freezes the
# garbage collector's generations.
WATCHED = """
import builtins, gc, io, os, runpy, sys

seed = sys.argv[1]
opened, frozen = io.open, gc.freeze

def watched_open(file, *args, **kwargs):
    if str(file) == seed:
        print(f"seed opened in {os.getpid()}", file=sys.stderr, flush=True)
    return opened(file, *args, **kwargs)

def watched_freeze():
    print(f"gc frozen in {os.getpid()}", file=sys.stderr, flush=True)
    frozen()

builtins.open = io.open = watched_open
gc.freeze = watched_freeze
sys.argv = ["sandbox", "--host", "127.0.0.1", "--port", "0", "--seed-file", seed]
runpy.run_module("mypreferences_sandbox", run_name="__main__")
"""


T = TypeVar("T")


def watched(exercise: Callable[[str], T]) -> tuple[T, str, int]:
    """What ``exercise`` returns from the watched command line (given its URL), what the command
    line said on stderr once stopped, and its process id (the master's)."""
    process = subprocess.Popen(
        [sys.executable, "-c", WATCHED, str(FIXTURES / "seed.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with process:
        result = exercise(process.stdout.readline().split()[-1])
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    return result, stderr, process.pid


def test_the_seed_is_loaded_and_frozen_in_the_worker_never_in_the_master():
    profile, stderr, master = watched(lambda url: send("GET", f"{url}/acme/Profile/1001"))

    events = re.findall(r"^(seed opened|gc frozen) in (\d+)$", stderr, re.MULTILINE)
    worker = events[0][1] if events else None
    assert profile.json()["CustomerName"]["FirstName"] == "Ann"
    # Read once, by the worker, then frozen there; the master (the process started) never opens it.
    assert events == [("seed opened", worker), ("gc frozen", worker)]
    assert worker != str(master)
    assert "Traceback" not in stderr


def test_what_an_import_built_is_frozen_in_the_worker():
    def exercise(url: str) -> tuple[dict, int]:
        imported = ControlClient(url).import_state({"clients": {"more": [{}]}})
        failed = requests.post(f"{url}/_sandbox/state", json={"clients": {"more": [1]}}, timeout=10)
        return imported, failed.status_code

    (imported, failed), stderr, master = watched(exercise)

    frozen = re.findall(r"^gc frozen in (\d+)$", stderr, re.MULTILINE)
    assert (imported["imported"], failed) == ({"more": 1}, 400)
    assert len(frozen) == 2  # after start-up, then after the import that succeeded
    assert len(set(frozen)) == 1 and frozen[0] != str(master)  # in the worker


def test_busy_port_is_an_error_without_a_traceback():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with start("--port", str(holder.getsockname()[1])) as process:
            _, stderr = process.communicate(timeout=30)

    assert process.returncode != 0
    assert "in use" in stderr
    assert "Traceback" not in stderr


def hang_in_background(url: str, client_id: str, count: int, seconds: float) -> list[threading.Thread]:
    """Start ``count`` requests that a HANG rule holds for ``seconds``; the threads end with them."""
    ControlClient(url).add_fault(
        match={"clientId": client_id}, fault={"type": "HANG", "duration": int(seconds * 1000)}, times=count
    )

    def held() -> None:
        with contextlib.suppress(requests.RequestException):  # the hang ends with a closed connection
            send("GET", f"{url}/{client_id}/Profile/1")

    threads = [threading.Thread(target=held) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_stays_responsive_while_hangs_are_in_progress():
    with Launched() as launched:
        hanging = hang_in_background(launched.url, "slow", count=8, seconds=6)
        control = ControlClient(launched.url)
        while control.faults()[0]["hits"] < 8:  # every hang holds its request
            time.sleep(0.05)
        created = post_json(f"{launched.url}/acme/Profile", minimal_profile())
        health = send("GET", f"{launched.url}/_sandbox/health")
        still_hanging = sum(thread.is_alive() for thread in hanging)

    assert (created.status_code, health.status_code) == (201, 200)
    assert still_hanging == 8  # answered while all eight hangs were still holding their requests


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stops_within_a_second_even_with_a_hang_in_flight(stop):
    with Launched() as launched:
        hang_in_background(launched.url, "slow", count=1, seconds=8)
        time.sleep(0.3)
        launched.process.send_signal(stop)
        started = time.monotonic()
        launched.process.wait(timeout=10)
        took = time.monotonic() - started

    assert launched.process.returncode in (0, -stop)
    assert took < 3  # gunicorn's default would wait 30 s for the 8 s hang; the sandbox gives it 1 s


# An ISO 8601 time in UTC, to the millisecond.
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def stamped_now(stamp: str) -> bool:
    """Whether ``stamp`` is an ISO 8601 UTC time of the last minute."""
    if not STAMP.fullmatch(stamp):
        return False
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return abs((datetime.now(UTC) - moment).total_seconds()) < 60


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_one_log_line_per_request(log_format):
    # A time zone five and a half hours from UTC: a local time in the lines would be far from now.
    with Launched("--log-format", log_format, env={"TZ": "IST-5:30"}) as launched:
        ControlClient(launched.url).add_fault(
            match={"clientId": "acme", "method": "GET"}, respond={"status": 503}
        )
        post_json(f"{launched.url}/acme/Profile", minimal_profile())
        send("GET", f"{launched.url}/acme/Profile/1")

    lines = [line for line in launched.stderr.splitlines() if "/acme/Profile" in line]
    if log_format == "json":
        entries = [json.loads(line) for line in lines]
        assert all(next(iter(entry)) == "time" and stamped_now(entry.pop("time")) for entry in entries), lines
        assert [entry | {"durationMs": 0} for entry in entries] == [
            {
                "method": "POST",
                "path": "/acme/Profile",
                "status": 201,
                "durationMs": 0,
                "clientId": "acme",
                "fault": None,
            },
            {
                "method": "GET",
                "path": "/acme/Profile/1",
                "status": 503,
                "durationMs": 0,
                "clientId": "acme",
                "fault": "f1",
            },
        ]
    else:
        stamps, rest = zip(*(line.split(" ", 1) for line in lines), strict=True)
        assert all(stamped_now(stamp) for stamp in stamps), lines
        assert [re.sub(r"[\d.]+ms", "Nms", line) for line in rest] == [
            "POST /acme/Profile 201 Nms client=acme fault=-",
            "GET /acme/Profile/1 503 Nms client=acme fault=f1",
        ]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [((), {"SANDBOX_PORT": "abc"}, "SANDBOX_PORT: invalid port value: 'abc'"),
     (("--port", "70000"), {}, "argument --port: invalid port value: '70000'"),
     (("--threads", "0"), {}, "argument --threads: invalid positive value: '0'"),
     (("--max-connections", "0"), {}, "argument --max-connections: invalid positive value: '0'"),
     (("--header-timeout", "1.5"), {}, "argument --header-timeout: invalid positive value: '1.5'"),
     ((), {"SANDBOX_BODY_TIMEOUT": "-1"}, "SANDBOX_BODY_TIMEOUT: invalid positive value: '-1'"),
     ((), {"SANDBOX_WORKERS": "two"}, "SANDBOX_WORKERS: invalid positive value: 'two'"),
     (("--header-timeout", "0"), {"SANDBOX_HEADER_TIMEOUT": "5"}, "argument --header-timeout: invalid positive value: '0'")],
)  # fmt: skip
def test_bad_options_are_an_error_without_a_traceback(args, env, message):
    with start(*args, env=env) as process:
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert stderr.splitlines()[-1] == f"mypreferences-sandbox: error: {message}"
    assert "Traceback" not in stderr


def test_threads_are_ignored_and_said_to_be():
    with Launched("--threads", "8") as launched:
        health = send("GET", f"{launched.url}/_sandbox/health")

    assert health.status_code == 200
    assert "mypreferences-sandbox: --threads (SANDBOX_THREADS) is ignored: see --max-connections" in (
        launched.stderr.splitlines()
    )


def test_max_connections_fit_the_limit_on_open_files():
    # The command line, in a process whose limit on open files is 256, hard.
    lowered = (
        "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
        "sys.argv = ['sandbox', '--port', '0', '--max-connections', '4096']; "
        "runpy.run_module('mypreferences_sandbox', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", lowered], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with process:
        line = process.stdout.readline()
        health = send("GET", f"{line.split()[-1]}/_sandbox/health")
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    assert health.status_code == 200
    assert (
        "mypreferences-sandbox: --max-connections lowered from 4096 to 192, for the limit on open files "
        "(ulimit -n)" in stderr.splitlines()
    )


def test_version_is_printed():
    result = subprocess.run(
        [sys.executable, "-m", "mypreferences_sandbox", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"mypreferences-sandbox {metadata.version('mypreferences-sandbox')}\n"


def summary_of(launched: Launched) -> str | None:
    """The line the command line prints after its URL (None if none comes within 10 seconds)."""
    lines: list[str] = []
    # A thread, so that a line that never comes fails the test rather than hanging it.
    reader = threading.Thread(target=lambda: lines.append(launched.process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(10)
    return lines[0].rstrip("\n") if lines else None


@pytest.mark.parametrize(
    ("args", "said"),
    [((), "store memory, 1 worker, auth lenient, control plane on (no token), no seed file"),
     (("--seed-file", str(FIXTURES / "seed.json"), "--auth-mode", "strict", "--auth-file",
       str(FIXTURES / "auth.json"), "--control-token", "not-to-be-printed"),
      f"store memory, 1 worker, auth strict, control plane on (locked by a token), seed {FIXTURES / 'seed.json'} (3 profiles)"),
     (("--no-control",), "store memory, 1 worker, auth lenient, control plane off, no seed file")],
)  # fmt: skip
def test_a_summary_of_the_settings_follows_the_url(args, said):
    with Launched(*args) as launched:
        summary = summary_of(launched)

    assert summary == f"mypreferences-sandbox: {said}"
    assert "not-to-be-printed" not in summary + launched.stderr


@pytest.mark.redis
def test_the_summary_never_shows_the_password_of_the_store():
    seed = FIXTURES / "seed.json"
    with RedisServer() as server:
        with redis.Redis(port=server.port) as client:
            client.config_set("requirepass", "redis-password")
        store = f"redis://:redis-password@127.0.0.1:{server.port}/0"
        with Launched("--store", store, "--workers", "2", "--seed-file", str(seed)) as launched:
            summary = summary_of(launched)
            health = send("GET", f"{launched.url}/_sandbox/health")

    assert health.json()["store"] == "redis"  # the password worked
    assert summary == (
        f"mypreferences-sandbox: store redis://:***@127.0.0.1:{server.port}/0, 2 workers, auth lenient, "
        f"control plane on (no token), seed {seed} (3 profiles in the shared store)"
    )
    assert "redis-password" not in launched.stderr


@pytest.mark.parametrize(
    ("store", "shown"),
    [("memory", "memory"),
     ("redis://localhost:6379/0", "redis://localhost:6379/0"),
     ("redis://user:secret@redis:6379/0", "redis://user:***@redis:6379/0"),
     ("rediss://:secret@[::1]:6380/1?password=secret&db=1", "rediss://:***@[::1]:6380/1?password=***&db=1"),
     ("unix:///run/redis.sock?password=secret", "unix:///run/redis.sock?password=***")],
)  # fmt: skip
def test_a_store_is_shown_without_its_password(store, shown):
    assert store_shown(store) == shown


@pytest.mark.parametrize(("host", "reached"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]")])
def test_a_wildcard_address_prints_a_url_that_reaches_it(host, reached):
    if host == "::" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with Launched("--host", host) as launched:
        summary = summary_of(launched)
        health = send("GET", f"{launched.url}/_sandbox/health")

    assert re.fullmatch(rf"http://{re.escape(reached)}:\d+", launched.url)
    assert health.status_code == 200
    assert summary.startswith(f"mypreferences-sandbox: listening on all addresses ({host}), store memory, ")


def test_the_control_plane_is_locked_by_the_token_given_on_the_command_line():
    with Launched("--control-token", "let-me-in") as launched:
        refused = requests.get(f"{launched.url}/_sandbox/faults", timeout=10)
        allowed = requests.get(
            f"{launched.url}/_sandbox/faults", headers={"Authorization": "Bearer let-me-in"}, timeout=10
        )

    assert (refused.status_code, allowed.status_code) == (401, 200)


def test_the_control_plane_is_turned_off_on_the_command_line():
    with Launched("--no-control", env={"SANDBOX_CONTROL": "true"}) as launched:
        faults = requests.get(f"{launched.url}/_sandbox/faults", timeout=10)
        health = requests.get(f"{launched.url}/_sandbox/health", timeout=10)

    assert (faults.status_code, health.status_code) == (404, 200)


def test_the_auth_file_is_given_on_the_command_line(tmp_path):
    missing = tmp_path / "auth.json"
    with start("--port", "0", "--auth-mode", "strict", "--auth-file", str(missing)) as process:
        stdout, stderr = process.communicate(timeout=30)

    assert (process.returncode, stdout) == (2, "")
    [line] = stderr.splitlines()
    assert line.startswith(f"mypreferences-sandbox: SANDBOX_AUTH_FILE {missing}: ")


@pytest.mark.parametrize("option", ["--control-token", "--auth-file"])
def test_an_empty_value_is_refused(option):
    with start(option, "") as process:
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert (
        stderr.splitlines()[-1]
        == f"mypreferences-sandbox: error: argument {option}: invalid nonempty value: ''"
    )


def test_an_unknown_variable_is_named_with_the_closest_setting():
    env = {
        "SANDBOX_MAX_SEARCH_RESULT": "5",
        "SANDBOX_WORKER": "1",
        "SANDBOX_NOTHING_LIKE_IT": "1",
        # Known: a setting's nested key, the command line's own, the pytest plugin's.
        "SANDBOX_ACCOUNTS__acme": '{"DefaultLocale": "fr_FR"}',
        "SANDBOX_HEADER_TIMEOUT": "5",
        "SANDBOX_WAIT": "30",
    }
    with Launched(env=env) as launched:
        health = send("GET", f"{launched.url}/_sandbox/health")

    assert health.status_code == 200
    assert [line for line in launched.stderr.splitlines() if "is not a setting" in line] == [
        "mypreferences-sandbox: SANDBOX_MAX_SEARCH_RESULT is not a setting; did you mean SANDBOX_MAX_SEARCH_RESULTS?",
        "mypreferences-sandbox: SANDBOX_NOTHING_LIKE_IT is not a setting; no known name is close",
        "mypreferences-sandbox: SANDBOX_WORKER is not a setting; did you mean SANDBOX_WORKERS?",
    ]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [(("--no-control", "--control-token", "t"), {}, "--control-token has no use with --no-control"),
     (("--control-token", "t"), {"SANDBOX_CONTROL": "false"}, "--control-token has no use with SANDBOX_CONTROL=false"),
     (("--control-token", "let me in"), {}, "SANDBOX_CONTROL_TOKEN must be visible characters without spaces: "
      "it is sent as 'Authorization: Bearer <token>'"),
     ((), {"SANDBOX_CONTROL_TOKEN": "let\tme"}, "SANDBOX_CONTROL_TOKEN must be visible characters without spaces: "
      "it is sent as 'Authorization: Bearer <token>'"),
     (("--store", "redis://127.0.0.1:6379/abc"), {}, "SANDBOX_STORE's database must be a whole number "
      "(redis://HOST:PORT/0), not 'abc'")],
)  # fmt: skip
def test_a_setting_that_cannot_work_is_a_one_line_error(args, env, message):
    with start("--port", "0", *args, env=env) as process:
        stdout, stderr = process.communicate(timeout=30)

    assert (process.returncode, stdout, stderr) == (2, "", f"mypreferences-sandbox: {message}\n")
