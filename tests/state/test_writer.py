"""BackgroundWriter: ordered jobs, and scheduled jobs that coalesce and run within their delay."""

import threading
import time

from clawrouter_plugin.state.writer import BackgroundWriter


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_jobs_run_in_order_off_the_caller_thread():
    writer = BackgroundWriter("test")
    seen = []
    for i in range(20):
        writer.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    writer.flush()
    assert [i for i, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"test"}
    writer.close()


def test_scheduled_job_coalesces_and_runs_on_its_own():
    writer = BackgroundWriter("test")
    runs = []
    job = lambda: runs.append(time.monotonic())  # noqa: E731 - one identity for all calls
    started = time.monotonic()
    for _ in range(100):
        writer.schedule(job, 0.2)
    assert wait_until(lambda: runs)
    time.sleep(0.3)
    assert len(runs) == 1 and runs[0] - started >= 0.15
    writer.schedule(job, 0.05)  # after it ran, a new call schedules it again
    assert wait_until(lambda: len(runs) == 2)
    writer.close()


def test_flush_and_nudge_cut_the_delay_short():
    writer = BackgroundWriter("test")
    runs = []
    job = lambda: runs.append(1)  # noqa: E731
    writer.schedule(job, 60)
    started = time.monotonic()
    writer.flush()
    assert runs == [1] and time.monotonic() - started < 5
    writer.schedule(job, 60)
    writer.nudge()
    assert wait_until(lambda: runs == [1, 1])
    writer.schedule(job, 60)
    writer.close()  # runs what is waiting, without waiting out the delay
    assert runs == [1, 1, 1] and time.monotonic() - started < 5


def test_after_close_jobs_run_in_the_caller_thread():
    writer = BackgroundWriter("test")
    writer.close()
    seen = []
    writer.schedule(lambda: seen.append(threading.current_thread()), 60)
    assert seen == [threading.current_thread()]


def test_a_failing_job_does_not_stop_the_writer(caplog):
    writer = BackgroundWriter("test")
    seen = []
    writer.submit(lambda: 1 / 0)
    writer.submit(lambda: seen.append("after"))
    writer.flush()
    assert seen == ["after"] and "background write failed" in caplog.text
    writer.close()
