# Sourced by ./run and ./test: make sure .venv exists and has the project installed.
# $1 is "run" or "test" (always given: a bare `source` would see the caller's arguments);
# "test" also installs the test extras. Re-installs when pyproject.toml or setup.py changes,
# and when a module compiled by mypyc (setup.py) is older than its source. Either script
# installs the project once: ./test after ./run adds only the test extras, and ./run after
# ./test installs nothing.
extras=""
[ "${1:-}" = "test" ] && extras="test"
stamp=".venv/.installed"            # the project is installed (by either script)
test_stamp=".venv/.installed-test"  # and so are the test extras

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
    touch "$test_stamp"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
elif [ -n "$extras" ] && { [ ! -f "$test_stamp" ] || [ pyproject.toml -nt "$test_stamp" ]; }; then
  # ./run installed the project already: add the test extras only, without building it again
  echo "Installing the test extras into .venv..." >&2
  .venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]))' \
    | xargs -d '\n' .venv/bin/python -m pip install -q
  touch "$test_stamp"
fi
