# Shared helpers for the process, resource and isolation checks in this directory.
# Source it from a check script; it needs bash, curl, python3 and the server binary.
# Every connection goes to 127.0.0.1. Each check kills what it started by pid.

BIN=${BIN:-./target/release/mcp-terminal-server}
BIN=$(readlink -f "$BIN")
PORT=${PORT:-18080}
URL=http://127.0.0.1:$PORT/mcp
T=$(mktemp -d)
chmod 0777 "$T"
RUNAS=()   # unprivileged checks: RUNAS=(setpriv --reuid=rtest --regid=rtest --init-groups)
SENV=()    # extra server environment, e.g. SENV=(MCP_AUTH_TOKEN="$TOK")
PROTO=2025-06-18
HDR=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
     -H "MCP-Protocol-Version: $PROTO")
INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"'$PROTO'","capabilities":{},"clientInfo":{"name":"rtest","version":"0"}}}'
SPID=
SID=
FAILED=0

# start_http [server args]: starts the server in the background and sets SPID.
start_http() {
  "${RUNAS[@]}" env -i PATH="$PATH" HOME="$T" LANG=C.UTF-8 RTEST_CANARY="canary-$RANDOM$RANDOM" \
      "${SENV[@]}" "$BIN" --http --host 127.0.0.1 --port "$PORT" "$@" 2>>"$T/server.err" &
  SPID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    sleep 0.1
  done
  echo "server did not start; stderr:"; cat "$T/server.err"; return 1
}

# mcp_init: opens an MCP session and sets SID. (setpriv, prlimit and env exec in
# place, so SPID is the server's own pid whatever RUNAS holds.)
mcp_init() {
  SID=$(curl -s -D - -o /dev/null "${HDR[@]}" -X POST "$URL" -d "$INIT" |
        tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')
  curl -s -o /dev/null "${HDR[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" \
       -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
}

# call TOOL 'JSON-ARGS': prints the JSON-RPC response.
call() {
  curl -s -m 60 "${HDR[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":$RANDOM,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}" |
  sed -n 's/^data: //p; /^{/p' | tail -n 1
}

# get FIELD < response: prints structuredContent.FIELD.
get() {
  python3 -c 'import json,sys
r=json.load(sys.stdin).get("result",{}); v=r.get("structuredContent",{}).get(sys.argv[1])
print(v if isinstance(v,str) else json.dumps(v))' "$1"
}
js() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
open_s() { local a=${1:-}; [ -n "$a" ] || a='{}'; call session_open "$a" | get session_id; }
type_() { call session_write "{\"session_id\":\"$1\",\"input\":$(js "$2"),\"submit\":true,\"settle\":0.5}"; }
count() { pgrep -c -f "^rtest-$1" || true; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$SPID/status"; }
hwm() { awk '/^VmHWM/{print $2}' "/proc/$SPID/status"; }
nfd() { ls "/proc/$SPID/fd" | wc -l; }
zombies() { ps -o stat= --ppid "$SPID" | grep -c '^Z' || true; }
# lat TOOL 'JSON-ARGS': prints the seconds one call took.
lat() {
  curl -s -o /dev/null -w '%{time_total}\n' "${HDR[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}"
}
# p99: the 99th of 100 sorted tools/list round trips, in seconds.
p99() {
  for _ in $(seq 100); do
    curl -s -o /dev/null -w '%{time_total}\n' "${HDR[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" \
      -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
  done | sort -n | sed -n 99p
}
# below A B: succeeds when the number A is less than B.
below() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2"; }
# check NAME CONDITION...: runs the condition and records a failure.
check() {
  local name=$1; shift
  if "$@"; then echo "PASS $name"; else echo "FAIL $name"; FAILED=1; fi
}
machine() {
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "kernel: $(uname -r); cpus: $(nproc)"
}
stop_server() {
  [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
  SPID=
}
ensure_rtest_user() {
  id rtest >/dev/null 2>&1 || useradd --no-create-home --shell /bin/bash rtest
}
# Kills, pid by pid, what is left of the user rtest, which exists only for these checks.
kill_rtest_processes() {
  local pid
  for pid in $(pgrep -u rtest); do kill -KILL "$pid" 2>/dev/null || true; done
}
finish() {
  stop_server
  rm -rf "$T"
  if ((FAILED)); then echo "verdict: FAIL"; exit 1; fi
  echo "verdict: PASS"
}
