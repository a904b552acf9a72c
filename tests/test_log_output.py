"""The command line's log output: formatted in order, written in batches off the caller's thread."""

import io
import logging
import threading
import time

from clawrouter_plugin.log_output import FORMAT, BatchedStreamHandler


class RecordingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((text, threading.current_thread().name))
        return super().write(text)


def make_logger(stream) -> tuple[logging.Logger, BatchedStreamHandler]:
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(f"test-batched-{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_records_are_written_in_order_in_one_batch_off_the_callers_thread():
    stream = RecordingStream()
    logger, handler = make_logger(stream)
    for i in range(5):
        logger.info("[%s] line %d", "SIMPLE", i)
    logger.debug("not shown")
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [f"[SIMPLE] line {i}" for i in range(5)]
    assert " INFO " in lines[0]
    assert len(stream.writes) == 1 and stream.writes[0][1] == "clawrouter-log"
    handler.close()


def test_records_appear_without_a_flush():
    stream = RecordingStream()
    logger, handler = make_logger(stream)
    logger.warning("on its own")
    deadline = time.monotonic() + 5
    while "on its own" not in stream.getvalue():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    handler.close()


def test_a_closed_stream_is_not_an_error():
    stream = RecordingStream()
    logger, handler = make_logger(stream)
    stream.close()
    logger.error("nowhere to go")
    handler.flush()  # no exception, the writer thread lives on
    logger.error("still fine")
    handler.close()


def test_time_stamps_match_the_standard_formatter():
    from clawrouter_plugin.log_output import _Formatter

    ours, standard = _Formatter(FORMAT), logging.Formatter(FORMAT)
    for created in (1764400000.001, 1764400000.5, 1764400000.999, 1764400001.25, 1764403600.0):
        record = logging.LogRecord("clawrouter.x", logging.INFO, __file__, 1, "m %s", ("a",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)
