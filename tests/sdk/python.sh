#!/usr/bin/env bash
# Drives the server with the official Python MCP SDK (examples/python_client.py): over
# stdio and over HTTP, each in both protocol modes, then over HTTP with a bearer token.
# Usage: tests/sdk/python.sh SERVER_BINARY PYTHON_WITH_MCP
set -euo pipefail
bin=$(realpath "$1")
python=$2
example=$(dirname "$0")/../../examples/python_client.py

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_http [VAR=VALUE...]: starts the server on a free port and sets url.
start_http() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid"
    wait "$server_pid" || true
  fi
  env -u MCP_AUTH_TOKEN "$@" "$bin" --http --port 0 2>"$work/server.log" &
  server_pid=$!
  local port=
  for _ in $(seq 100); do
    port=$(grep -o ' port=[0-9]*' "$work/server.log" | head -n 1 | cut -d= -f2 || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "server logged no port:"; cat "$work/server.log"; exit 1; }
  url=http://127.0.0.1:$port/mcp
}

for mode in legacy auto; do
  echo "stdio, $mode:"
  "$python" "$example" --stdio "$bin" --mode "$mode"
done

start_http
for mode in legacy auto; do
  echo "http, $mode:"
  "$python" "$example" --url "$url" --mode "$mode"
done

token=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
start_http MCP_AUTH_TOKEN="$token"
for mode in legacy auto; do
  echo "http with a token, $mode:"
  MCP_AUTH_TOKEN=$token "$python" "$example" --url "$url" --mode "$mode"
done
echo "http without the token (must fail):"
if "$python" "$example" --url "$url" --mode legacy 2>"$work/rejected.log"; then
  echo "the client without a token was not rejected"
  exit 1
fi
grep -q 'missing bearer token' "$work/server.log" || { cat "$work/server.log"; exit 1; }
echo "rejected: missing bearer token"
