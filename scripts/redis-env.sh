#!/usr/bin/env bash
# Make sure a real redis-server binary exists for the team-mode tests (issue #15) and print its
# path. Uses the machine's redis-server when there is one; otherwise installs Debian's package
# (needs root and apt). Nothing is installed when the binary is already there, so repeated test
# runs never install twice. The tests start their own servers on 127.0.0.1; no service is used.
set -euo pipefail
found="$(command -v redis-server || true)"
if [ -z "$found" ]; then
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "redis-server is missing: install it (Debian/Ubuntu: apt-get install redis-server)" >&2
    exit 1
  fi
  echo "Installing Debian's redis-server for the team-mode tests..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends redis-server >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends redis-server >&2; }
  found="$(command -v redis-server)"
fi
echo "$found"
