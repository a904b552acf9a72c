"""Catalog loading and alias resolution; config file loading and validation errors."""

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.config import load_config
from clawrouter_plugin.errors import ConfigError

SEED_ALIASES = {
    "free": "free",
    "br-sonnet": "anthropic/claude-sonnet-4.6",
    "br-opus": "anthropic/claude-opus-4.6",
    "br-haiku": "anthropic/claude-haiku-4.5",
    "gpt": "openai/gpt-4o",
    "gpt5": "openai/gpt-5.2",
    "deepseek": "deepseek/deepseek-chat",
    "reasoner": "deepseek/deepseek-reasoner",
    "kimi": "moonshot/kimi-k2.5",
    "gemini": "google/gemini-2.5-pro",
    "flash": "google/gemini-2.5-flash",
    "grok": "xai/grok-3",
    "grok-fast": "xai/grok-4-fast-reasoning",
}


@pytest.mark.parametrize(("alias", "target"), sorted(SEED_ALIASES.items()))
def test_seed_aliases_resolve_with_and_without_prefix(alias, target):
    catalog = load_catalog()
    assert catalog.resolve(alias) == target
    assert catalog.resolve(f"blockrun/{alias}") == target
    assert catalog.resolve(f"  BlockRun/{alias.upper()} ") == target


def test_profiles_and_unknown_names():
    catalog = load_catalog()
    for profile in ("auto", "eco", "premium", "free", "agentic"):
        assert catalog.resolve(f"blockrun/{profile}") == profile
        assert catalog.is_profile(profile)
    assert catalog.resolve("openai/eco") == "eco"
    assert catalog.resolve("router") == "auto"
    assert catalog.resolve("blockrun/no-such-model") == "no-such-model"


def test_free_model_and_image_models():
    catalog = load_catalog()
    free = catalog.chat["nvidia/gpt-oss-120b"]
    assert free.is_free and not free.tools
    assert catalog.resolve_image(None) == "google/nano-banana"
    assert catalog.resolve_image(None, edit=True) == "openai/gpt-image-1"
    for short, full in {"nano-banana": "google/nano-banana", "banana-pro": "google/nano-banana-pro",
                        "dall-e-3": "openai/dall-e-3", "gpt-image": "openai/gpt-image-1",
                        "flux": "black-forest/flux-1.1-pro"}.items():
        assert catalog.resolve_image(short) == full
    gpt_image = catalog.images["openai/gpt-image-1"]
    assert gpt_image.price("1024x1024") == 0.02
    assert gpt_image.price("1536x1024") == 0.04
    assert gpt_image.fits(1024, 1536) and not gpt_image.fits(2048, 2048)


def test_missing_config_file_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENCLAW_CONFIG", str(tmp_path / "absent.yaml"))
    loaded = load_config()
    assert loaded.plugin.port == 8402
    assert loaded.plugin.max_cost_per_run_mode == "graceful"


def test_both_plugin_shapes(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("plugins:\n  - id: '@blockrun/clawrouter'\n    config:\n"
                      "      maxCostPerRun: 0.5\n      maxCostPerRunMode: strict\n")
    mapped = tmp_path / "map.yaml"
    mapped.write_text("plugins:\n  entries:\n    clawrouter:\n      config:\n"
                      "        maxCostPerRun: 0.5\n        maxCostPerRunMode: strict\n")
    for path in (listed, mapped):
        plugin = load_config(str(path)).plugin
        assert plugin.max_cost_per_run == 0.5
        assert plugin.max_cost_per_run_mode == "strict"


@pytest.mark.parametrize(("body", "needle"), [
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        maxCostPerRunMode: lavish\n",
     "maxCostPerRunMode"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        port: 99999\n", "port"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        cache:\n          ttlSecs: 3\n",
     "cache.ttlSecs"),
    ("plugins: [\n", "not valid YAML"),
    ("plugins: 7\n", "plugins"),
    # infinity, and true/false where a number belongs, used to crash or slip through
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        maxCostPerRun: .inf\n",
     "maxCostPerRun"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        cache: {ttlSeconds: .inf}\n",
     "cache.ttlSeconds"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        port: true\n", "port"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n        cache: {maxSize: true}\n",
     "cache.maxSize"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n"
     "        routing: {classifier: {historyWeight: .inf}}\n", "routing.classifier.historyWeight"),
    ("plugins:\n  entries:\n    clawrouter:\n      config:\n"
     "        routing: {classifier: {historyWeight: true}}\n",
     "routing.classifier.historyWeight"),
])
def test_bad_config_names_key_and_problem(tmp_path, body, needle):
    path = tmp_path / "openclaw.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert needle in info.value.message


def test_json_output_capabilities():
    """``json``: the provider honours response_format json_object; ``json_schema``: it also
    honours a json_schema (which implies json)."""
    chat = load_catalog().chat
    assert all(m.json for m in chat.values() if m.json_schema)
    assert chat["openai/gpt-4o-mini"].json_schema and chat["google/gemini-2.5-flash"].json_schema
    assert chat["deepseek/deepseek-chat"].json and not chat["deepseek/deepseek-chat"].json_schema
    assert not chat["openai/o1-mini"].json  # o1-mini refuses response_format
    assert chat[load_catalog().free_model].json_schema
    assert sum(m.json for m in chat.values()) >= len(chat) - 5


def test_a_json_schema_model_without_json_is_refused():
    from clawrouter_plugin.catalog import _load

    text = resources_text().replace("16384, json, json_schema]", "16384, json_schema]", 1)
    assert text != resources_text()
    with pytest.raises(ValueError, match="json_schema without json"):
        _load(text)


def resources_text() -> str:
    from importlib import resources

    return resources.files("clawrouter_plugin").joinpath("data/models.yaml").read_text("utf-8")
