# Sourced by ./run and ./test: make sure .venv exists and has the project installed.
# $1 is "run" or "test" (always given: a bare `source` would see the caller's arguments);
# "test" also installs the test extras. Re-installs when pyproject.toml changes.
extras=""
[ "${1:-}" = "test" ] && extras="test"
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[$extras]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
