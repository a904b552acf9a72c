"""The package root exports the programmatic API the seeds show (in Python form)."""

import clawrouter_plugin
from clawrouter_plugin import ResponseCache, route, start_proxy


def test_root_exports(tmp_path):
    decision = route({"messages": [{"role": "user", "content": "hi"}]}, profile="eco")
    assert decision.tier in ("SIMPLE", "MEDIUM") and decision.model
    cache = ResponseCache(tmp_path / "c", max_size=5, default_ttl=30, max_item_size=1000,
                          enabled=True)
    assert cache.stats()["maxSize"] == 5
    cache.close()
    assert callable(start_proxy) and callable(clawrouter_plugin.register)
    assert set(clawrouter_plugin.__all__) >= {"start_proxy", "route", "ResponseCache", "register"}
