# Sourced by ./run and ./test: make sure .venv exists and has the project installed.
# $1 is "run" or "test" (always given: a bare `source` would see the caller's arguments);
# "test" also installs the test extras. Re-installs when pyproject.toml or setup.py changes,
# and when a module compiled by mypyc (setup.py) is older than its source.
extras=""
[ "${1:-}" = "test" ] && extras="test"
stamp=".venv/.installed${extras:+-$extras}"

compiled_stale() {
  local so
  for so in $(find clawrouter_plugin -name '*.so'); do
    [ "${so%%.*}.py" -nt "$so" ] && return 0
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || compiled_stale; then
  echo "Installing clawrouter into .venv (compiling the router takes about a minute)..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[$extras]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
