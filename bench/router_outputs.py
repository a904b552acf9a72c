"""Check that a change to the router's code keeps its decisions: dump them, change, compare.

Run: .venv/bin/python bench/router_outputs.py dump before.json
     (change the code, reinstall)
     .venv/bin/python bench/router_outputs.py compare before.json

Every corpus row (all splits: labels are not read, only the request bodies), plain and as the
OpenClaw gateway wraps it, and every development-set request is routed under each profile.
Recorded per request: the classifier's probabilities, agentic score and flag, contributions,
and the decision under each profile (tier, model chain, signals). ``compare`` allows
probabilities and scores to differ by 1e-9 and everything else not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clawrouter_plugin.router import Router  # noqa: E402
from clawrouter_plugin.router.corpus import expand, load_corpus  # noqa: E402
from clawrouter_plugin.router.features import read_request  # noqa: E402
from tests.support.host_shapes import wrap  # noqa: E402

CORPUS = ROOT / "tests" / "router" / "corpus"
DEVSETS = [ROOT / "tests" / "router" / name
           for name in ("devset.jsonl", "fresh.jsonl", "fresh_b.jsonl")]
PROFILES = ("auto", "eco", "premium", "agentic")
TOLERANCE = 1e-9


def requests() -> dict[str, dict]:
    """Every request to route, by a stable name."""
    out: dict[str, dict] = {}
    for row in load_corpus(CORPUS):
        body = expand(row)
        out[row["id"]] = body
        out[row["id"] + ":wrapped"] = wrap(body)
    for path in DEVSETS:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if line.strip():
                out[f"{path.stem}:{number}"] = json.loads(line)["body"]
    return out


def outputs(router: Router, body: dict) -> dict:
    """What the router says about one request."""
    verdict = router.classifier.classify(read_request(body, 0, 3))
    decisions = {}
    for profile in PROFILES:
        d = router.route(body, profile)
        decisions[profile] = [d.tier, d.chain, d.signals, d.confidence, d.score, d.agentic,
                              d.contributions]
    return {"probabilities": verdict.probabilities, "agentic_score": verdict.agentic_score,
            "agentic": verdict.agentic, "tier": verdict.tier,
            "contributions": verdict.contributions, "signals": verdict.signals,
            "decisions": decisions}


def _diff(old: object, new: object, where: str, out: list[str]) -> None:
    if isinstance(old, float) and isinstance(new, float):
        if abs(old - new) > TOLERANCE:
            out.append(f"{where}: {old!r} != {new!r}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, f"{where}[{index}]", out)
    elif isinstance(old, dict) and isinstance(new, dict) and old.keys() == new.keys():
        for key in old:
            _diff(old[key], new[key], f"{where}.{key}", out)
    elif old != new:
        out.append(f"{where}: {old!r} != {new!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("dump", "compare"))
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    router = Router()
    # tuples become lists, as they will after a JSON round trip
    now = json.loads(json.dumps({name: outputs(router, body)
                                 for name, body in requests().items()}))
    if args.action == "dump":
        args.file.write_text(json.dumps(now, ensure_ascii=False, indent=0) + "\n", "utf-8")
        print(f"{len(now)} requests written to {args.file}")
        return
    before = json.loads(args.file.read_text("utf-8"))
    problems: list[str] = []
    for name in sorted(before.keys() & now.keys()):
        _diff(before[name], now[name], name, problems)
    print(f"{len(before.keys() & now.keys())} requests compared "
          f"({len(now.keys() - before.keys())} new, {len(before.keys() - now.keys())} gone)")
    for line in problems[:40]:
        print("  " + line)
    if problems:
        sys.exit(f"{len(problems)} differences")
    print("same decisions")


if __name__ == "__main__":
    main()
