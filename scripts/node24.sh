#!/usr/bin/env bash
# Puts a Node.js 24 LTS first on PATH for this shell.
#
#   source scripts/node24.sh
#
# When the machine's node is older than 24, Node 24 is installed from the npm
# registry's `node` package into .tools/node24 (once) and its bin folder is put
# first on PATH. Nothing outside the project folder is touched.

_care_relay_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_care_relay_tools="$_care_relay_root/.tools/node24"
_care_relay_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)

if [ "$_care_relay_major" -lt 24 ]; then
  if [ ! -x "$_care_relay_tools/node_modules/node/bin/node" ]; then
    echo "node24: machine node is v${_care_relay_major:-none}; installing Node 24 into .tools/node24" >&2
    mkdir -p "$_care_relay_tools"
    npm install --no-save --no-package-lock --silent --prefix "$_care_relay_tools" node@24 >&2
  fi
  export PATH="$_care_relay_tools/node_modules/node/bin:$PATH"
fi
echo "node24: using node $(node --version)" >&2
unset _care_relay_root _care_relay_tools _care_relay_major
