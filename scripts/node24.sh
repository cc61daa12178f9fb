#!/usr/bin/env bash
# Optional: puts the project's Node 24 first on PATH for this shell.
#
#   source scripts/node24.sh
#
# Not needed for the npm scripts: `npm install` installs Node 24 into node_modules
# (the `node` devDependency) and npm puts node_modules/.bin first on PATH for every
# script and for `npx`. This is for running `node FILE` by hand in a shell whose own
# node is older. Nothing outside the project folder is touched.

_care_relay_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$_care_relay_root/node_modules/.bin/node" ]; then
  export PATH="$_care_relay_root/node_modules/.bin:$PATH"
  echo "node24: using node $(node --version)" >&2
else
  echo "node24: no node_modules/.bin/node yet; run \`npm install\` first" >&2
fi
unset _care_relay_root
