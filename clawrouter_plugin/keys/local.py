"""API keys in a file of the data directory (``state.backend: local``).

``api-keys.json`` is only ever replaced whole (written to a temporary file, mode 0600, then
renamed), so a reader never sees half of it. Changes are serialised by an advisory lock on
``.api-keys.lock``. A running proxy looks at the file's identity (inode, size, mtime) at most
every :data:`CHECK_SECONDS` and reads it again when it changed: a key revoked by
``clawrouter keys revoke`` stops working well within a second.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson

from ..errors import ClawRouterError, KeysUnavailable, WalletError
from ..paths import ensure_private_dir
from ..payment.keystore import write_private
from .model import ApiKey
from .store import REVOCATION_SECONDS, KeyStore, from_record, unknown

log = logging.getLogger("clawrouter.keys")
CHECK_SECONDS = REVOCATION_SECONDS / 4
MAX_FILE_BYTES = 16 * 1024 * 1024
_Signature = tuple[int, int, int]  # inode, size, mtime in ns


class LocalKeyStore(KeyStore):
    """Keys in one JSON file: ``{"keys": [record, ...]}``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._keys: dict[str, tuple[ApiKey, str]] = {}
        self._signature: _Signature | None = None
        self._checked = -CHECK_SECONDS  # monotonic time of the last look at the file

    async def list(self) -> list[ApiKey]:
        records = await asyncio.to_thread(self._read_records)
        keys = [key for key, _ in _parse(records, self.path).values()]
        return sorted(keys, key=lambda key: key.created)

    async def revoke(self, key_id: str) -> ApiKey:
        return await asyncio.to_thread(self._revoke, key_id)

    async def _add(self, record: dict) -> None:
        await asyncio.to_thread(self._change, lambda records: [*records, record])

    async def _lookup(self, key_id: str) -> tuple[ApiKey, str] | None:
        now = time.monotonic()
        if now - self._checked >= CHECK_SECONDS:
            self._refresh()
            self._checked = now
        return self._keys.get(key_id)

    def _refresh(self) -> None:
        """Read the file again if it is not the one read last (a stat otherwise)."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            self._keys, self._signature = {}, None
            return
        except OSError as exc:
            raise KeysUnavailable(f"the API key file {self.path} cannot be read: "
                                  f"{exc.strerror}") from None
        if (status.st_ino, status.st_size, status.st_mtime_ns) == self._signature:
            return
        try:
            records, signature = self._read()
            self._keys = _parse(records, self.path)
        except ClawRouterError as exc:
            raise KeysUnavailable(exc.message) from None
        self._signature = signature

    def _read(self) -> tuple[list, _Signature | None]:
        """The file's records and the identity of what was read (None: no file)."""
        try:
            with open(self.path, "rb") as handle:
                status = os.fstat(handle.fileno())
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return [], None
        except OSError as exc:
            raise ClawRouterError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            if len(data) > MAX_FILE_BYTES:
                raise ValueError("too large")
            records = orjson.loads(data)["keys"]
            if not isinstance(records, list):
                raise TypeError("keys is not a list")
        except (ValueError, KeyError, TypeError):
            raise ClawRouterError(f"the API key file {self.path} is damaged (not the JSON "
                                  "clawrouter writes); restore it from a backup or move it "
                                  "away and create new keys") from None
        return records, (status.st_ino, status.st_size, status.st_mtime_ns)

    def _read_records(self) -> list:
        return self._read()[0]

    def _revoke(self, key_id: str) -> ApiKey:
        revoked: list[ApiKey] = []

        def mark(records: list) -> list:
            for record in records:
                if isinstance(record, dict) and record.get("id") == key_id:
                    record["revoked"] = True
                    revoked.append(from_record(record))
            if not revoked:
                raise unknown(key_id)
            return records

        self._change(mark)
        return revoked[0]

    def _change(self, edit) -> None:
        """Replace the file with ``edit(records)``, one writer at a time."""
        with self._locked():
            records = edit(self._read_records())
            text = orjson.dumps({"keys": records}, option=orjson.OPT_INDENT_2).decode()
            try:
                write_private(self.path, text, replace=True)
            except WalletError as exc:  # its message names the file, never its contents
                raise ClawRouterError(exc.message) from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(f".{self.path.stem}.lock")
        try:
            ensure_private_dir(self.path.parent)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ClawRouterError(f"cannot lock {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _parse(records: list, path: Path) -> dict[str, tuple[ApiKey, str]]:
    """id → (key, hash); a damaged entry is skipped (its key cannot be used) with a warning."""
    keys: dict[str, tuple[ApiKey, str]] = {}
    for index, record in enumerate(records):
        try:
            keys[record["id"]] = (from_record(record), record["hash"])
        except (ValueError, KeyError, TypeError):
            log.warning("%s: entry %d is damaged and ignored", path, index)
    return keys
