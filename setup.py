"""Build hook: compile the router's hot path to C with mypyc (about 1.5x faster routing).

The metadata lives in pyproject.toml; this file only adds the compiled modules. Without a C
compiler, or with CLAWROUTER_PURE_PYTHON=1, the same modules install as plain Python.
"""

import os
import shlex
import shutil
import sysconfig

from setuptools import setup

# pure functions and classes on the per-request routing path (no pydantic, no I/O)
COMPILED = [
    "clawrouter_plugin/ask.py",
    "clawrouter_plugin/router/classifier.py",
    "clawrouter_plugin/router/decision.py",
    "clawrouter_plugin/router/features.py",
    "clawrouter_plugin/router/keywords.py",
    "clawrouter_plugin/router/ngrams.py",
    "clawrouter_plugin/router/router.py",
    "clawrouter_plugin/router/scorer.py",
    "clawrouter_plugin/router/shape.py",
    "clawrouter_plugin/router/tables.py",
    "clawrouter_plugin/router/weights.py",
]


def _have_compiler() -> bool:
    command = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    return bool(command) and shutil.which(command[0]) is not None


def _extensions() -> list:
    if os.environ.get("CLAWROUTER_PURE_PYTHON") == "1" or not _have_compiler():
        print("clawrouter: installing the router as pure Python (not compiled)")
        return []
    from mypyc.build import mypycify

    # the rest of the package is imported for its types only; its own typing is not checked here
    options = ["--follow-imports=silent", "--ignore-missing-imports"]
    return mypycify(options + COMPILED, opt_level="3", group_name="clawrouter_router")


setup(ext_modules=_extensions())
