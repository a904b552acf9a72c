"""``clawrouter route``: readable output, JSONL batches, bad lines, config overrides."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from clawrouter_plugin.cli import main


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OPENCLAW_CONFIG", raising=False)
    monkeypatch.setenv("CLAWROUTER_HOME", str(tmp_path / "data"))


def test_prompt_prints_one_block_per_profile(capsys):
    code = main(["route", "Prove that there are infinitely many primes.", "--profile", "auto",
                 "--profile", "eco", "--profile", "sonnet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "auto: REASONING -> xai/grok-4-1-fast-reasoning" in out
    assert "eco: REASONING ->" in out
    assert "anthropic/claude-sonnet-4.6: DIRECT -> anthropic/claude-sonnet-4.6" in out
    assert "signals    " in out and "saves" in out


def test_system_prompt_option(capsys):
    assert main(["route", "hi", "--system", "Always answer in JSON."]) == 0
    out = capsys.readouterr().out
    assert "auto: SIMPLE" in out and "structured output" in out


def test_jsonl_file(tmp_path, capsys):
    path = tmp_path / "batch.jsonl"
    rows = [{"id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}},
            {"id": 2, "body": {"messages": [{"role": "user", "content": "Design a URL shortener "
                                             "that scales to billions of redirects."}],
                               "tools": [{"type": "function", "function": {"name": "f"}}]}}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert main(["route", "--jsonl", str(path), "--profile", "auto", "--profile", "free"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["id"], x["profile"]) for x in lines] == [("a", "auto"), ("a", "free"),
                                                        (2, "auto"), (2, "free")]
    keys = {"id", "profile", "tier", "model", "fallbacks", "agentic", "confidence", "signals",
            "cost_estimate", "savings", "route_us"}
    assert all(set(x) == keys for x in lines)
    assert lines[0]["tier"] == "SIMPLE" and lines[1]["model"] == "nvidia/gpt-oss-120b"
    assert lines[2]["agentic"] is True and lines[3]["model"] == "nvidia/gpt-oss-120b"
    assert "tools dropped: the free model cannot call tools" in lines[3]["signals"]
    assert all(isinstance(x["route_us"], float) and x["route_us"] > 0 for x in lines)


def test_jsonl_bad_lines_are_reported_and_skipped(monkeypatch, capsys):
    stdin = "\n".join([
        json.dumps({"id": 1, "body": {"messages": [{"role": "user", "content": "hi"}]}}),
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"id": "no-body"}),
        json.dumps({"id": "bad-messages", "body": {"messages": "hi"}}),
        json.dumps({"id": "last", "body": {"messages": [{"role": "user", "content": "bye"}]}}),
    ])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["route", "--jsonl", "-"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in lines] == [1, None, None, "no-body", "bad-messages", "last"]
    assert [("error" in x) for x in lines] == [False, True, True, True, True, False]
    assert "not valid JSON" in lines[1]["error"]
    assert "'messages' must be a non-empty list" in lines[4]["error"]
    assert all(x["profile"] == "auto" for x in lines)


def test_routing_overrides_from_the_config_file(tmp_path, capsys):
    path = tmp_path / "openclaw.yaml"
    path.write_text("plugins:\n  - id: clawrouter\n    config:\n      routing:\n"
                    "        tiers: {SIMPLE: {primary: openai/gpt-4o-mini}}\n"
                    "      excludeModels: [deepseek/deepseek-chat]\n")
    assert main(["route", "hi", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "auto: SIMPLE -> openai/gpt-4o-mini" in out
    assert "deepseek/deepseek-chat" not in out


def test_clean_errors(tmp_path, capsys):
    assert main(["route", "hi", "--profile", "gtp-4o"]) == 2
    assert "Did you mean: openai/gpt-4o" in capsys.readouterr().err
    assert main(["route"]) == 2
    assert "give a prompt" in capsys.readouterr().err
    assert main(["route", "--jsonl", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("plugins:\n  - id: clawrouter\n    config:\n      routing: {penalties: "
                   "{auto: {underRouting: -1}}}\n")
    assert main(["route", "hi", "--config", str(bad)]) == 2
    assert "routing.penalties.auto.underRouting" in capsys.readouterr().err


def test_console_script_runs_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "clawrouter_plugin", "route", "--jsonl", "-"],
        input='{"id": 1, "body": {"messages": [{"role": "user", "content": "hi"}]}}\nnope\n',
        capture_output=True, text=True, timeout=60, check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 2


JSONL_KEYS = {"id", "profile", "tier", "model", "fallbacks", "agentic", "confidence", "signals",
              "cost_estimate", "savings", "route_us"}
ERROR_KEYS = {"id", "profile", "error"}


def test_jsonl_records_keep_exactly_their_fields(monkeypatch, capsys):
    """The --jsonl record is an interface (scripts read it): its keys are pinned here, so a
    change that drops or renames one fails. ``contributions`` is added only with --explain."""
    stdin = "\n".join([
        json.dumps({"id": 1, "body": {"messages": [{"role": "user", "content": "hi"}]}}),
        json.dumps({"id": 2, "body": {
            "messages": [{"role": "user", "content": "Prove that there are infinitely many primes."}],
            "response_format": {"type": "json_object"}}}),
        json.dumps({"id": 3, "body": {"messages": "nope"}}),
    ])
    for profiles in ([], ["--profile", "eco", "--profile", "sonnet", "--profile", "free"]):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        assert main(["route", "--jsonl", "-", *profiles]) == 1
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(records) == 3 * max(1, len(profiles) // 2)
        for record in records:
            assert set(record) == (ERROR_KEYS if record["id"] == 3 else JSONL_KEYS), record
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["route", "--jsonl", "-", "--explain"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(r) for r in records] == [JSONL_KEYS | {"contributions"}] * 2 + [ERROR_KEYS]
    assert all(isinstance(r["contributions"], list) for r in records[:2])


def test_explain_lists_the_decision_the_signals_and_the_weights():
    from clawrouter_plugin.router import Router
    from clawrouter_plugin.router.classifier import Explanation
    from clawrouter_plugin.router.cli import explain

    decision = Router().route({"messages": [{"role": "user", "content": "hi"}],
                               "tools": [{"type": "function", "function": {"name": "f"}}]})
    weights = (("ask: word 'prove'", 1.234), ("system prompt: 'json'", -0.05))
    decision = decision._replace(explanation=Explanation.fixed(weights, decision.signals))
    text = explain(decision, "auto")
    lines = text.splitlines()
    assert lines[0].startswith(f"auto: {decision.tier} -> {decision.model}")
    assert "  features (weight toward the chosen tier)" in lines
    assert "    +1.234  ask: word 'prove'" in lines
    assert "    -0.050  system prompt: 'json'" in lines
    assert "  signals" in lines and "    tools" in lines
    first, second = "    +1.234  ask: word 'prove'", "    -0.050  system prompt: 'json'"
    assert lines.index(first) < lines.index(second)


def test_explain_on_the_command_line_without_a_traceback(tmp_path):
    config = tmp_path / "openclaw.yaml"
    config.write_text("plugins:\n  entries:\n    blockrun:\n      config:\n        routing:\n"
                      "          profiles: {auto: {maxTier: MEDIUM}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "clawrouter_plugin", "route", "--explain", "--config", str(config),
         "Prove that there are infinitely many primes."],
        capture_output=True, text=True, timeout=60, check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("auto: MEDIUM -> ")
    assert "  signals" in lines and "    capped at MEDIUM (maxTier)" in lines
    assert "  features (weight toward the chosen tier)" in lines
