"""A real ``redis-server`` for the team-mode tests, on a free port of 127.0.0.1.

The binary comes from ``scripts/redis-env.sh`` (the machine's, or Debian's package installed
once). Each server runs in its own temporary folder without persistence; :meth:`kill` and
:meth:`start` on the same object bring it down and back on the same port, for the "Redis
down" tests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "redis-env.sh"
START_TIMEOUT = 15.0


def redis_binary() -> str:
    """The path of ``redis-server`` (installed by the project's script when missing)."""
    found = shutil.which("redis-server")
    if found:
        return found
    done = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/redis-env.sh failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server process on 127.0.0.1 (``url`` is its ``redis://`` URL)."""

    def __init__(self, password: str | None = None):
        self.port = free_port()
        self.password = password
        self._dir = Path(tempfile.mkdtemp(prefix="clawrouter-redis-"))
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<port>/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self._dir),
                "--protected-mode", "yes", "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if self._answers():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {START_TIMEOUT}s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                if self.password:
                    conn.sendall(f"AUTH {self.password}\r\n".encode())
                    conn.recv(64)
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown) and wait for it to go."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def flush(self) -> None:
        """Delete every key (between tests sharing one server)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            if self.password:
                conn.sendall(f"AUTH {self.password}\r\n".encode())
                conn.recv(64)
            conn.sendall(b"FLUSHALL\r\n")
            if not conn.recv(64).startswith(b"+OK"):
                raise RuntimeError("FLUSHALL failed")

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, closed (and its folder removed) on exit."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
