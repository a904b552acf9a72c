"""The payment journal on real files: replay records each open payment once, whatever
point a crash stopped at, and the running journal stays small."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from clawrouter_plugin.errors import PaymentRefused
from clawrouter_plugin.payment import journal as journal_module
from clawrouter_plugin.payment.journal import PaymentJournal
from clawrouter_plugin.payment.response import UNCONFIRMED, PaymentRecord
from clawrouter_plugin.payment.tab import PaymentTab
from clawrouter_plugin.usage import UsageLog, UsageRecord, utc_now_iso


def payment(usd: float = 0.001) -> PaymentRecord:
    return PaymentRecord(amount_usd=usd, amount_atomic=round(usd * 1e6), network="eip155:8453",
                         asset="0x" + "1" * 40, pay_to="0x" + "2" * 40, payer="0x" + "3" * 40,
                         transaction=None, status=UNCONFIRMED,
                         nonce="0x" + secrets.token_hex(32))


def lines(usage: UsageLog) -> list[dict]:
    usage.flush()
    return [json.loads(line) for path in sorted(usage.directory.glob("usage-*.jsonl"))
            for line in path.read_text().splitlines()]


def record_for(record: PaymentRecord) -> UsageRecord:
    return UsageRecord(timestamp=utc_now_iso(), session="s", requested_model="m", model="m",
                       tier="SIMPLE", input_tokens=1, output_tokens=1, cost=record.amount_usd,
                       baseline_cost=0.0, savings=0.0, latency_ms=1.0, cache_hit=False,
                       fallbacks=0, paid=record.amount_usd, payment="settled",
                       nonce=record.nonce)


def test_replay_records_an_open_payment_once(tmp_path):
    path = tmp_path / "payments.journal"
    journal = PaymentJournal(path)
    signed = payment(0.002)
    journal.begin(signed, PaymentTab("sess", "forward", "/v1/embeddings", model="e"))
    journal.close()  # the process died here: no answer, no usage line
    usage = UsageLog(tmp_path / "logs")
    assert PaymentJournal(path).replay(usage) == 1
    assert PaymentJournal(path).replay(usage) == 0  # the journal was emptied
    (entry,) = lines(usage)
    assert (entry["nonce"], entry["payment"], entry["paid"], entry["cost"]) == \
        (signed.nonce, "unconfirmed", 0.002, 0.002)
    assert (entry["session"], entry["kind"], entry["path"], entry["model"]) == \
        ("sess", "forward", "/v1/embeddings", "e")
    assert path.read_bytes() == b""
    usage.close()


def test_replay_after_a_crash_between_the_usage_line_and_the_journal(tmp_path):
    """The usage line was written but the journal never heard: the log decides, nothing is
    recorded twice. A line the crash cut short is skipped."""
    path = tmp_path / "payments.journal"
    journal = PaymentJournal(path)
    written, open_one = payment(), payment()
    journal.begin(written, None)
    journal.begin(open_one, None)
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'{"nonce": "0xcut')  # a crash in the middle of a write
    usage = UsageLog(tmp_path / "logs")
    usage.append(record_for(written))
    usage.flush()
    assert PaymentJournal(path).replay(usage) == 1
    assert sorted(entry["nonce"] for entry in lines(usage)) == sorted(
        [written.nonce, open_one.nonce])
    usage.close()


def test_payments_are_done_once_their_usage_lines_are_written(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_module, "COMPACT_BYTES", 2000)
    path = tmp_path / "payments.journal"
    journal = PaymentJournal(path)
    usage = UsageLog(tmp_path / "logs")
    journal.replay(usage)
    usage.on_written = journal.done
    still_open = payment()
    journal.begin(still_open, None)
    for _ in range(40):
        signed = payment()
        journal.begin(signed, None)
        usage.append(record_for(signed))
        usage.flush()
    assert journal.open_count() == 1
    assert path.stat().st_size < 2000 + 400  # compacted as it went
    usage.close()
    journal.close()
    fresh = UsageLog(tmp_path / "logs2")
    assert PaymentJournal(path).replay(fresh) == 1  # only the open one remains
    assert [entry["nonce"] for entry in lines(fresh)] == [still_open.nonce]
    fresh.close()


def test_a_journal_that_cannot_be_written_refuses_the_payment(tmp_path):
    (tmp_path / "payments.journal").mkdir()  # not a file: cannot be opened for writing
    journal = PaymentJournal(tmp_path / "payments.journal")
    with pytest.raises(PaymentRefused, match="journal cannot be written"):
        journal.begin(payment(), None)
    assert journal.open_count() == 0


def test_the_journal_costs_microseconds_per_payment(tmp_path, capsys):
    """The added work on a paid request's path: one journal line and the tab."""
    journal = PaymentJournal(tmp_path / "payments.journal")
    records = [payment() for _ in range(2000)]
    started = time.perf_counter()
    for record in records:  # one request, one payment: the usual case
        tab = PaymentTab("session-id", "chat", "/v1/chat/completions", model="a/model")
        journal.begin(record, tab)
        tab.add(record)
        tab.update(record)
        tab.spent_usd(tab.mark())
        tab.take(record)
        tab.rest()
    per_payment = (time.perf_counter() - started) / len(records) * 1e6
    with capsys.disabled():
        print(f"\njournal + tab per payment: {per_payment:.1f} µs")
    assert per_payment < 500  # generous: a shared, slow machine
    journal.close()


def test_two_proxies_on_one_directory_keep_their_own_journals(tmp_path):
    """A second proxy leaves the first one's payments in flight alone; once the first has
    stopped without recording one, the next start records it, once."""
    usage = UsageLog(tmp_path / "logs")
    first = PaymentJournal.open(tmp_path)
    first.replay(usage)
    in_flight = payment()
    first.begin(in_flight, None)
    second = PaymentJournal.open(tmp_path)
    assert second.path != first.path
    assert second.replay(usage) == 0  # the first proxy is still running: not an orphan
    assert first.path.read_bytes().count(in_flight.nonce.encode()) == 1
    first.close()  # it dies before its usage line was written
    second.close()
    third = PaymentJournal.open(tmp_path)
    assert third.replay(usage) == 1
    assert [entry["nonce"] for entry in lines(usage)] == [in_flight.nonce]
    assert sorted(p.name for p in tmp_path.glob("payments*.journal")) == ["payments.journal"]
    third.close()
    assert PaymentJournal.open(tmp_path).replay(usage) == 0
    usage.close()


def test_a_journal_removed_between_its_open_and_its_lock_is_not_shared(tmp_path, monkeypatch):
    """Workers starting together: one opens ``payments.journal.lock`` just as another, which
    replayed that orphan, deletes it and lets go. The lock it then gets is on a deleted file,
    so a third proxy could take the same journal (and replay the second's live payments)."""
    lock_path = tmp_path / "payments.journal.lock"
    lock_path.touch()
    real_flock = journal_module.fcntl.flock
    removed = []

    def flock_after_removal(fd: int, operation: int) -> None:
        if not removed:  # the replaying proxy removes the file between our open and our lock
            removed.append(lock_path)
            lock_path.unlink()
        real_flock(fd, operation)

    monkeypatch.setattr(journal_module.fcntl, "flock", flock_after_removal)
    first = PaymentJournal.open(tmp_path)
    second = PaymentJournal.open(tmp_path)
    try:
        assert removed
        assert second.path != first.path  # each live proxy has a journal of its own
    finally:
        first.close()
        second.close()
