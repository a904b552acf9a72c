"""A single background thread that runs small disk writes in order, off the event loop.

Cheaper than a ThreadPoolExecutor on the hot path: handing over a job is one
``SimpleQueue.put`` (about a microsecond), with no futures or semaphores. Jobs that write
whatever has gathered since they last ran (the cache's save, the usage log's lines) are
*scheduled* with a delay instead: many requests then share one disk write, and the thread
wakes once per delay, not once per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

log = logging.getLogger(__name__)
_STOP = object()


class BackgroundWriter:
    """Runs submitted callables one at a time on a daemon thread started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: SimpleQueue = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._scheduled: set[Callable[[], Any]] = set()
        self._hurry = 0  # > 0 while someone waits in flush(): scheduled jobs run at once
        self._nudged = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after :meth:`close`: jobs then run at once in the caller's thread."""
        return self._closed

    def submit(self, job: Callable[..., Any], *args: Any) -> None:
        """Queue ``job(*args)``; after :meth:`close` it runs at once in the caller's thread."""
        if self._closed:
            self._run(job, args)
            return
        if self._thread is None:
            self._start()
        self._jobs.put((job, args))

    def schedule(self, job: Callable[[], Any], delay: float) -> None:
        """Run ``job()`` once, within ``delay`` seconds; calls made before it has started
        add nothing. :meth:`flush`, :meth:`nudge` and :meth:`close` cut the delay short."""
        if job in self._scheduled:
            # Already waiting: it leaves the set only just before it runs, so it will see
            # whatever the caller prepared before this call. No lock needed to know that.
            return
        with self._lock:
            if job in self._scheduled:
                return
            self._scheduled.add(job)
        self.submit(self._run_scheduled, job, delay)

    def nudge(self) -> None:
        """Start the scheduled job that is waiting now, without waiting for it."""
        with self._lock:
            self._nudged = True
            self._wake.notify_all()

    def flush(self) -> None:
        """Wait until every job queued or scheduled so far has run."""
        if self._thread is None or self._closed:
            return
        with self._lock:
            self._hurry += 1
            self._wake.notify_all()
        try:
            done = threading.Event()
            self._jobs.put((done.set, ()))
            done.wait()
        finally:
            with self._lock:
                self._hurry -= 1

    def close(self) -> None:
        """Run what is queued, then stop the thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join()

    def _run_scheduled(self, job: Callable[[], Any], delay: float) -> None:
        with self._lock:
            self._wake.wait_for(lambda: self._hurry or self._nudged or self._closed,
                                timeout=delay)
            self._nudged = False
            self._scheduled.discard(job)
        job()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            self._run(*item)

    @staticmethod
    def _run(job: Callable[..., Any], args: tuple) -> None:
        try:
            job(*args)
        except Exception:  # noqa: BLE001 - one failed write must not stop the writer
            log.exception("background write failed")
