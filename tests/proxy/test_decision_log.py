"""The proxy's routing log line: the decision's first signals, explained off the request path."""

from __future__ import annotations

import logging

from clawrouter_plugin.proxy import pipeline
from clawrouter_plugin.router import Router


def test_the_log_line_names_the_first_four_signals(caplog):
    """The line carries the decision's explanation unevaluated; formatting it (in the log
    handler's thread, log_output.py) gives the first four signals, as written before."""
    decision = Router().route({"messages": [{"role": "user", "content":
                                             "Prove that there are infinitely many primes."}],
                               "tools": [{"type": "function", "function": {"name": "f"}}]})
    caplog.set_level(logging.INFO, logger="clawrouter.pipeline")
    pipeline._log_decision(decision)
    [record] = [r for r in caplog.records if r.name == "clawrouter.pipeline"]
    assert not any(isinstance(arg, str) and "+" in arg for arg in record.args)
    assert len(decision.signals) > 4
    assert record.getMessage().endswith(" " + ", ".join(decision.signals[:4]))
    assert f"[{decision.tier}] {decision.model}" in record.getMessage()


def test_nothing_is_logged_below_info(caplog):
    decision = Router().route({"messages": [{"role": "user", "content": "hi"}]})
    caplog.set_level(logging.WARNING, logger="clawrouter.pipeline")
    pipeline._log_decision(decision)
    assert not [r for r in caplog.records if r.name == "clawrouter.pipeline"]
