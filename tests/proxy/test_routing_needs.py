"""Through the real proxy: JSON mode, a long input and a capped profile pick the tier from the
ask and the model from what the request needs (issue #13: no blunt overrides)."""

from __future__ import annotations

from clawrouter_plugin.catalog import load_catalog
from tests.support.x402_upstream import CHAT_PATH

from .conftest import sdk

CATALOG = load_catalog()
SCHEMA = {"type": "json_schema", "json_schema": {"name": "capital", "schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def paid_bodies(upstream) -> list[dict]:
    return [r.json() for r in upstream.requests if r.path == CHAT_PATH and r.paid and r.json()]


async def test_a_json_schema_question_is_simple_and_goes_to_a_model_that_honours_it(
        proxy, x402_upstream):
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", response_format=SCHEMA,
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert raw.headers["x-clawrouter-tier"] == "SIMPLE"
    [sent] = paid_bodies(x402_upstream)
    assert CATALOG.chat[sent["model"]].json_schema
    assert sent["response_format"] == SCHEMA  # forwarded untouched


async def test_a_trivial_ask_over_a_long_document_stays_cheap(proxy, x402_upstream):
    document = "The river ran past the old mill and on to the sea. " * 11_000  # ~145k tokens
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": document + "\n\nok, thanks"}])
    assert raw.headers["x-clawrouter-tier"] == "SIMPLE"
    [sent] = paid_bodies(x402_upstream)
    model = CATALOG.chat[sent["model"]]
    assert model.context_window > 1.1 * 140_000
    assert sent["model"] in proxy.services.router.settings.tables["auto"]["SIMPLE"]


async def test_max_tier_caps_auto_through_the_proxy(start, x402_upstream):
    proxy = await start(routing={"profiles": {"auto": {"maxTier": "MEDIUM"}}})
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content":
                                 "Prove that there are infinitely many primes."}])
    assert raw.headers["x-clawrouter-tier"] == "MEDIUM"
    [sent] = paid_bodies(x402_upstream)
    assert sent["model"] in proxy.services.router.settings.tables["auto"]["MEDIUM"]
