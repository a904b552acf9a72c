"""Log output for the command line: records gather briefly and a background thread formats
and writes them, so logging a request costs the event loop a few microseconds and a slow
terminal or a full pipe never stalls it."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from .state.writer import BackgroundWriter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DELAY_SECONDS = 0.1  # how long records may wait before they are written


class BatchedStreamHandler(logging.Handler):
    """Like :class:`logging.StreamHandler`, but written in batches by a background thread.

    The message is formatted in that thread too, so log only values whose text does not change
    afterwards (strings, numbers, a routing decision's signals worked out on demand), as this
    package does.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._records: list[logging.LogRecord] = []
        self._writer = BackgroundWriter("clawrouter-log")

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)  # under the handler's lock (Handler.handle takes it)
        self._writer.schedule(self._write_out, DELAY_SECONDS)

    def _write_out(self) -> None:
        with self.lock:  # type: ignore[union-attr] - created by Handler.__init__
            records, self._records = self._records, []
        text = "".join(self.format(record) + "\n" for record in records)
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nowhere left to report it
            pass

    def flush(self) -> None:
        """Write every record emitted so far."""
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
        super().close()


class _Formatter(logging.Formatter):
    """The standard formatter, with the date and time formatted once per second, not per line."""

    _second: int | None = None
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, super().formatTime(record, datefmt)[:-4]
        return f"{self._stamp},{int(record.msecs):03d}"


def configure(verbose: bool) -> BatchedStreamHandler:
    """Send this process's logs (INFO, or DEBUG when ``verbose``) to stderr in batches."""
    handler = BatchedStreamHandler()
    handler.setFormatter(_Formatter(FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # Records need none of these, nor where the call was made from (the knobs of the
    # logging HOWTO's "Optimization" section): each log call costs less than half as much.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    return handler
