"""A real ``redis-server`` set up as docs/deploy.md says: TLS only (``rediss://``), the default
user off, one ACL user limited to the ``clawrouter:`` keys without admin or dangerous
commands, bound to 127.0.0.1. The certificates come from the ``openssl`` command line."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.redis_server import free_port, redis_binary

PASSWORD = "team-secret-" + "x" * 20
START_SECONDS = 15.0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> None:
    """ca.crt, and redis.crt/redis.key for 127.0.0.1 signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "2", "-subj", "/CN=clawrouter test CA", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "redis.key", "-out",
             "redis.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "redis.crt", "-days", "2", "-extfile", "san.ext",
             cwd=folder)


class TlsRedis:
    """redis-server on a TLS port of 127.0.0.1 with the deploy guide's ACL user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="clawrouter-tls-redis-"))
        self.ca = self.dir / "ca.crt"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The ``rediss://`` URL a proxy uses (user, password, the CA to trust)."""
        return (f"rediss://clawrouter:{PASSWORD}@127.0.0.1:{self.port}/0"
                f"?ssl_ca_certs={self.ca}")

    def start(self) -> None:
        make_certificates(self.dir)
        (self.dir / "redis.conf").write_text(
            f"bind 127.0.0.1\nprotected-mode yes\nport 0\ntls-port {self.port}\n"
            f"tls-cert-file {self.dir / 'redis.crt'}\ntls-key-file {self.dir / 'redis.key'}\n"
            f"tls-ca-cert-file {self.ca}\ntls-auth-clients optional\n"
            "user default off\n"
            f"user clawrouter on >{PASSWORD} ~clawrouter:* &* +@all -@admin -@dangerous\n"
            "maxmemory 64mb\nmaxmemory-policy noeviction\n"
            f"save \"\"\nappendonly no\ndir {self.dir}\nloglevel warning\n")
        self._process = subprocess.Popen([redis_binary(), str(self.dir / "redis.conf")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("the TLS redis-server did not answer")

    def command(self, *words: str, user: str = "clawrouter", password: str = PASSWORD) -> str:
        """Send one inline command over TLS after AUTH; the first reply line ('' if none)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.sendall(f"AUTH {user} {password}\r\n".encode())
                if not conn.recv(256).startswith(b"+OK"):
                    return "-AUTH"
                conn.sendall((" ".join(words) + "\r\n").encode())
                return conn.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError:
            return ""

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
