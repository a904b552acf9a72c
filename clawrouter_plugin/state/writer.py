"""A single background thread that runs small disk writes in order, off the event loop.

Cheaper than a ThreadPoolExecutor on the hot path: handing over a job is one
``SimpleQueue.put`` (about a microsecond), with no futures or semaphores.
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
        self._closed = False

    def submit(self, job: Callable[..., Any], *args: Any) -> None:
        """Queue ``job(*args)``; after :meth:`close` it runs at once in the caller's thread."""
        if self._closed:
            self._run(job, args)
            return
        if self._thread is None:
            self._start()
        self._jobs.put((job, args))

    def flush(self) -> None:
        """Wait until every job queued so far has run."""
        if self._thread is None or self._closed:
            return
        done = threading.Event()
        self._jobs.put((done.set, ()))
        done.wait()

    def close(self) -> None:
        """Run what is queued, then stop the thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join()

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
