#!/usr/bin/env bash
# Checks that mcp-terminal-server is up: GET /healthz must return HTTP 200 with
# "status":"ok". Needs only bash and coreutils (it uses bash's /dev/tcp, not curl), so
# it also runs in the slim container image.
#
# Usage: health-check.sh [HOST [PORT]]
#   HOST defaults to MCP_HEALTH_HOST, else 127.0.0.1; PORT to MCP_PORT, else 8080.
#   MCP_HEALTH_TIMEOUT bounds the whole check, in seconds (default 5).
# Exit status: 0 healthy, 1 not (with the reason on standard error).
set -u

host=${1:-${MCP_HEALTH_HOST:-127.0.0.1}}
port=${2:-${MCP_PORT:-8080}}
limit=${MCP_HEALTH_TIMEOUT:-5}
# An IPv6 address goes in brackets in the Host header.
host_header=$host
[[ $host == *:* ]] && host_header="[$host]"

response=$(timeout "$limit" bash -c '
  exec 3<>"/dev/tcp/$1/$2" || exit 1
  printf "GET /healthz HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$3" "$2" >&3
  cat <&3
' health-check "$host" "$port" "$host_header" 2>/dev/null)
status=$?

if ((status == 124)); then
  echo "ERROR: no response from http://$host_header:$port/healthz within ${limit}s" >&2
  exit 1
fi
if [[ -z $response ]]; then
  echo "ERROR: cannot connect to $host_header port $port (is the server running and listening there?)" >&2
  exit 1
fi
status_line=${response%%$'\r'*}
if [[ ! $status_line =~ ^HTTP/1\.[01]\ 200 ]]; then
  echo "ERROR: /healthz returned \"$status_line\", expected HTTP 200" >&2
  exit 1
fi
if [[ $response != *'"status":"ok"'* ]]; then
  echo "ERROR: /healthz body does not contain \"status\":\"ok\"" >&2
  exit 1
fi
body=${response#*$'\r\n\r\n'}
echo "OK: $body"
