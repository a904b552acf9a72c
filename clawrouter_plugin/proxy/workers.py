"""``clawrouter serve --workers N``: N proxy processes answering on one port.

The parent process binds the port and makes sure the wallet exists (so N children starting
at once never race into two wallets), then starts N children, each an ordinary ``clawrouter
serve`` handed a listening socket. On Linux every child gets a socket of its own on the
port, bound with ``SO_REUSEPORT``: the kernel spreads new connections evenly over them.
Elsewhere the children share one socket. The parent keeps every socket open, so connections
that arrive while a child restarts wait in its queue instead of being refused.

- SIGINT/SIGTERM to the parent: each child gets SIGTERM, finishes the requests in flight
  (``server.SHUTDOWN_GRACE_SECONDS``) and exits; one still there after
  :data:`STOP_SECONDS` is killed. The parent then exits 0.
- A child that dies is logged with its exit status and started again after a backoff
  (0.5 s, doubling up to :data:`MAX_BACKOFF_SECONDS`; back to 0.5 s once a child has run for
  :data:`STABLE_SECONDS`). A child that exits before it ever answered (a start-up error such
  as a bad config), or :data:`GIVE_UP_AFTER` failed restarts in a row, stop the whole pool
  with a non-zero exit status: a supervisor such as systemd then decides what to do.
- If the parent dies, even by SIGKILL, the children see their pipe to it close and stop.

Nothing here is on the request path: the parent never touches a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ClawRouterError
from .server import SHUTDOWN_GRACE_SECONDS

log = logging.getLogger("clawrouter.workers")

BACKLOG = 511  # per socket: connections waiting for a child to accept them
STOP_SECONDS = SHUTDOWN_GRACE_SECONDS + 5.0
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 30.0
GIVE_UP_AFTER = 5


def one_socket_per_worker() -> bool:
    """Whether the kernel balances ``SO_REUSEPORT`` sockets (Linux does; BSD/macOS do not)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """Sockets listening on ``host:port`` for ``count`` workers (``port`` 0: a free port).

    One ``SO_REUSEPORT`` socket per worker where the kernel balances them, else one socket
    that every worker shares. :class:`ClawRouterError` when the port cannot be bound.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    per_worker = one_socket_per_worker()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if per_worker else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if per_worker:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # with port 0, the others join the first one's port
            sock.listen(BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ClawRouterError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


@dataclass
class _Slot:
    """One worker position: its socket, its current process and its restart history."""

    index: int
    sock: socket.socket
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    ready: bool = False
    ever_ready: bool = False
    failures: int = 0  # restarts in a row that did not run for STABLE_SECONDS


class WorkerPool:
    """Runs ``count`` children of ``command`` (see the module docstring)."""

    def __init__(self, command: list[str], sockets: list[socket.socket], count: int,
                 on_ready: Callable[[list[int]], None] | None = None) -> None:
        self.command = command
        self.slots = [_Slot(i, sockets[i % len(sockets)]) for i in range(count)]
        self.on_ready = on_ready  # called once, when every first child answers
        self._announced = False
        self._alive_r = self._alive_w = self._ready_r = self._ready_w = -1

    async def run(self) -> int:
        """Start the children and keep them running until SIGINT/SIGTERM; the exit status."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        self._alive_r, self._alive_w = os.pipe()  # EOF for the children when we are gone
        self._ready_r, self._ready_w = os.pipe()  # each child writes its pid once it serves
        os.set_blocking(self._ready_r, False)
        loop.add_reader(self._ready_r, self._read_ready)
        try:
            for slot in self.slots:
                await self._spawn(slot)
            return await self._watch(stop)
        finally:
            loop.remove_reader(self._ready_r)
            await self._stop_all()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for fd in (self._alive_r, self._alive_w, self._ready_r, self._ready_w):
                os.close(fd)

    async def _spawn(self, slot: _Slot) -> None:
        fds = (slot.sock.fileno(), self._alive_r, self._ready_w)
        slot.proc = await asyncio.create_subprocess_exec(
            *self.command, "--worker-fds", ",".join(map(str, fds)), pass_fds=fds)
        slot.started, slot.ready = time.monotonic(), False
        log.info("worker %d started (pid %d)", slot.index, slot.proc.pid)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._ready_r, 4096)
        except BlockingIOError:
            return
        pids = {int(word) for word in data.split() if word.isdigit()}
        for slot in self.slots:
            if slot.proc is not None and slot.proc.pid in pids:
                slot.ready = slot.ever_ready = True
        if not self._announced and all(slot.ready for slot in self.slots):
            self._announced = True
            if self.on_ready is not None:
                self.on_ready([slot.proc.pid for slot in self.slots if slot.proc is not None])

    async def _watch(self, stop: asyncio.Event) -> int:
        """Wait for the stop signal, restarting children that die; the exit status."""
        stopping = asyncio.ensure_future(stop.wait())
        pending: dict[asyncio.Future, tuple[str, _Slot]] = {
            asyncio.ensure_future(slot.proc.wait()): ("exit", slot)
            for slot in self.slots if slot.proc is not None}
        try:
            while True:
                done, _ = await asyncio.wait([stopping, *pending],
                                             return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    return 0
                for future in done:
                    event, slot = pending.pop(future)
                    if event == "restart":
                        await self._spawn(slot)
                        assert slot.proc is not None
                        pending[asyncio.ensure_future(slot.proc.wait())] = ("exit", slot)
                        continue
                    status = future.result()
                    delay = self._after_exit(slot, status)
                    if delay is None:
                        return status if status > 0 else 1
                    pending[asyncio.ensure_future(asyncio.sleep(delay))] = ("restart", slot)
        finally:
            for future in (stopping, *pending):
                future.cancel()

    def _after_exit(self, slot: _Slot, status: int) -> float | None:
        """Log a child's death; the delay before its restart, or None to stop the pool."""
        pid = slot.proc.pid if slot.proc is not None else 0
        slot.proc = None
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        if not slot.ever_ready:
            log.error("worker %d (pid %d) %s before it could serve; stopping all workers",
                      slot.index, pid, how)
            return None
        lived = time.monotonic() - slot.started
        slot.failures = 0 if lived >= STABLE_SECONDS else slot.failures + 1
        if slot.failures >= GIVE_UP_AFTER:
            log.error("worker %d (pid %d) %s; it failed %d times in a row within %.0f s of "
                      "starting, so all workers stop", slot.index, pid, how, slot.failures,
                      STABLE_SECONDS)
            return None
        delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** slot.failures)
        log.warning("worker %d (pid %d) %s; starting it again in %.1f s", slot.index, pid, how,
                    delay)
        return delay

    async def _stop_all(self) -> None:
        """SIGTERM every child, wait up to STOP_SECONDS, then SIGKILL what is left."""
        running = [slot.proc for slot in self.slots
                   if slot.proc is not None and slot.proc.returncode is None]
        for proc in running:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not running:
            return
        waits = [asyncio.ensure_future(proc.wait()) for proc in running]
        _, late = await asyncio.wait(waits, timeout=STOP_SECONDS)
        for proc in running:
            if proc.returncode is None:
                log.warning("worker pid %d did not stop within %.0f s; killing it", proc.pid,
                            STOP_SECONDS)
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
        if late:
            await asyncio.wait(late, timeout=STOP_SECONDS)
