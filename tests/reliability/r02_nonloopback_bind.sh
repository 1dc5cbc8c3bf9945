#!/usr/bin/env bash
# R02: a bind outside loopback needs a token. Runs as root, inside a new network
# namespace whose only interface is lo, so the wildcard binds reach nothing else.
# Usage: tests/reliability/r02_nonloopback_bind.sh (from the repository root).
set -euo pipefail
if [[ ${1:-} != --inside ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "skipped: R02 needs root for a network namespace (unshare -n)"
    exit 0
  fi
  exec timeout 120 unshare -n "$0" --inside
fi
ip link set lo up
cd "$(dirname "$0")/../.."
source tests/reliability/lib.sh
machine
failures=0
check() { # check DESCRIPTION CONDITION...
  local description=$1
  shift
  if "$@"; then echo "pass: $description"; else echo "FAIL: $description"; failures=$((failures + 1)); fi
}

echo "--- 1. wildcard binds without a token"
for variant in "--host 0.0.0.0" "--host ::" "MCP_HOST=0.0.0.0"; do
  started=$(date +%s.%N)
  if [[ $variant == MCP_HOST=* ]]; then
    set +e; env -i PATH="$PATH" "$variant" timeout 5 "$BIN" --http --port "$PORT" 2>"$T/err"; status=$?; set -e
  else
    # shellcheck disable=SC2086
    set +e; env -i PATH="$PATH" timeout 5 "$BIN" --http $variant --port "$PORT" 2>"$T/err"; status=$?; set -e
  fi
  took=$(python3 -c "import time; print(f'{time.time()-$started:.2f}')")
  echo "$variant: status $status after ${took} s: $(grep -m1 -i token "$T/err" || true)"
  check "$variant exits non-zero" test "$status" -ne 0 -a "$status" -ne 124
  check "$variant exits within 2 s" python3 -c "import sys; sys.exit(not $took < 2)"
  check "$variant names --auth-token-file" grep -q -- --auth-token-file "$T/err"
  check "$variant names MCP_AUTH_TOKEN" grep -q MCP_AUTH_TOKEN "$T/err"
done

echo "--- 2. wildcard bind with a token file"
head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$T/tok"
chmod 0600 "$T/tok"
TOK=$(cat "$T/tok")
env -i PATH="$PATH" "$BIN" --http --host 0.0.0.0 --port "$PORT" --auth-token-file "$T/tok" 2>>"$T/server.err" &
SPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
without=$(curl -s -o /dev/null -w '%{http_code}' "${HDR[@]}" -X POST "$URL" -d "$INIT")
with=$(curl -s -D "$T/headers" -o /dev/null -w '%{http_code}' "${HDR[@]}" -H "Authorization: Bearer $TOK" -X POST "$URL" -d "$INIT")
echo "without token: $without, with token: $with"
check "no token gets 401" test "$without" = 401
check "the token gets 200" test "$with" = 200
check "the token gets an Mcp-Session-Id" grep -qi '^mcp-session-id:' "$T/headers"
stop_server

echo "--- 3. loopback binds without a token"
for host in 127.0.0.1 ::1 localhost; do
  : >"$T/server.err"
  env -i PATH="$PATH" "$BIN" --http --host "$host" --port "$PORT" 2>>"$T/server.err" &
  SPID=$!
  base=http://127.0.0.1:$PORT
  [[ $host == ::1 ]] && base="http://[::1]:$PORT"
  for _ in $(seq 100); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.1; done
  health=$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")
  init=$(curl -s -o /dev/null -w '%{http_code}' "${HDR[@]}" -X POST "$base/mcp" -d "$INIT")
  echo "--host $host: healthz $health, initialize $init"
  check "--host $host answers /healthz" test "$health" = 200
  check "--host $host answers initialize" test "$init" = 200
  check "--host $host logs that there is no token" grep -qi "no bearer token\|without a token\|unauthenticated" "$T/server.err"
  stop_server
done

if ((failures)); then echo "R02: FAIL ($failures)"; exit 1; fi
echo "R02: PASS"
