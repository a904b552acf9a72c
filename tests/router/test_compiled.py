"""The router's hot modules are compiled with mypyc (setup.py); the pure-Python source must
decide exactly the same (same probabilities, to the last bit), since installs without a C
compiler run it."""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import clawrouter_plugin

from .test_devset import DEVSET

PROFILES = ("auto", "eco", "premium", "agentic")
PACKAGE = Path(clawrouter_plugin.__file__).parent
SETUP = PACKAGE.parent / "setup.py"

_ROUTE_ALL = """
import json, sys
import clawrouter_plugin.router.classifier as classifier
from clawrouter_plugin.router import Router
from clawrouter_plugin.router.features import read_request
assert classifier.__file__.endswith(sys.argv[1]), classifier.__file__
router = Router()
for line in sys.stdin:
    body, profile = json.loads(line)
    verdict = router.classifier.classify(read_request(body, 0, 3))
    print(json.dumps([router.route(body, profile).to_dict(), verdict.probabilities,
                      verdict.agentic_score, verdict.contributions]))
"""


def _compiled(name: str) -> bool:
    """Whether module ``name`` (dotted) was imported from a compiled extension."""
    return not importlib.import_module(name).__file__.endswith(".py")


def _listed_in_setup() -> list[str]:
    """The modules setup.py compiles (its COMPILED list), as dotted names."""
    tree = ast.parse(SETUP.read_text("utf-8"))
    [paths] = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
               and any(getattr(target, "id", "") == "COMPILED" for target in node.targets)]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def test_hot_modules_are_compiled_when_a_compiler_exists():
    if os.environ.get("CLAWROUTER_PURE_PYTHON") == "1" or shutil.which("cc") is None:
        pytest.skip("pure-Python install (no C compiler, or CLAWROUTER_PURE_PYTHON=1)")
    listed = _listed_in_setup()
    assert {"clawrouter_plugin.router.classifier", "clawrouter_plugin.router.ngrams",
            "clawrouter_plugin.router.decision", "clawrouter_plugin.router.scorer"} <= set(listed)
    assert [name for name in listed if not _compiled(name)] == []


def _route_all(cases: list, where: Path, suffix: str) -> list[dict]:
    """Decisions made in a fresh interpreter importing the package from ``where`` (the same
    hash seed in both runs, so keyword sets are iterated in the same order)."""
    result = subprocess.run(
        [sys.executable, "-c", _ROUTE_ALL, suffix], input="\n".join(json.dumps(c) for c in cases),
        capture_output=True, text=True, cwd=where, timeout=120,
        env={**os.environ, "PYTHONPATH": str(where), "PYTHONHASHSEED": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_pure_python_source_decides_like_the_compiled_modules(tmp_path):
    if not _compiled("clawrouter_plugin.router.classifier"):
        pytest.skip("the router is not compiled in this install")
    shutil.copytree(PACKAGE, tmp_path / "clawrouter_plugin",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    bodies = [json.loads(line)["body"] for line in DEVSET.read_text("utf-8").splitlines()
              if line.strip()]
    cases = [(body, profile) for body in bodies for profile in PROFILES]
    pure = _route_all(cases, tmp_path, ".py")
    compiled = _route_all(cases, PACKAGE.parent, ".so")
    assert len(pure) == len(compiled) == len(cases)
    assert [c for c, p, d in zip(cases, pure, compiled) if p != d] == []
