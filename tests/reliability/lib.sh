# Shared helpers of the reliability scripts: start the server over HTTP on loopback,
# initialise an MCP session with curl, call tools, and read the server's memory.
# Every script sources this file, runs under `timeout`, and kills what it started.

BIN=${BIN:-./target/release/mcp-terminal-server}
PORT=${PORT:-18080}
URL=http://127.0.0.1:$PORT/mcp
T=$(mktemp -d)
chmod 0777 "$T"
SENV=()
AUTH=()
PROTO=2025-06-18
HDR=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
  -H "MCP-Protocol-Version: $PROTO")
INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"'$PROTO'","capabilities":{},"clientInfo":{"name":"rtest","version":"0"}}}'
SPID=

# start_http [server args]: starts the server and waits for /healthz; sets SPID.
start_http() {
  env -i PATH="$PATH" HOME="$T" LANG=C.UTF-8 "${SENV[@]}" \
    "$BIN" --http --host 127.0.0.1 --port "$PORT" "$@" 2>>"$T/server.err" &
  SPID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    sleep 0.1
  done
  return 1
}

# stop_server: SIGTERM, then SIGKILL after 10 s, by the recorded pid.
stop_server() {
  [[ -n $SPID ]] || return 0
  kill -TERM "$SPID" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=
}

# mcp_init [curl args]: initialises an MCP session; sets SID.
mcp_init() {
  SID=$(curl -s -D - -o /dev/null "${HDR[@]}" "${AUTH[@]}" "$@" -X POST "$URL" -d "$INIT" |
    tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')
  curl -s -o /dev/null "${HDR[@]}" "${AUTH[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
}

# call TOOL 'JSON-ARGS': prints the JSON-RPC response without SSE framing.
call() {
  curl -s "${HDR[@]}" "${AUTH[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":$RANDOM,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}" |
    sed -n 's/^data: //p; /^{/p' | tail -n 1
}

# get FIELD < response: prints structuredContent.FIELD.
get() {
  python3 -c 'import json,sys
r=json.load(sys.stdin)["result"]; v=r.get("structuredContent",{}).get(sys.argv[1])
print(v if isinstance(v,str) else json.dumps(v))' "$1"
}

rss() { awk '/^VmRSS/{print $2}' "/proc/$SPID/status"; }
hwm() { awk '/^VmHWM/{print $2}' "/proc/$SPID/status"; }
nfd() { ls "/proc/$SPID/fd" | wc -l; }

# machine: the facts docs/reliability.md records with each result.
machine() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "kernel: $(uname -r), CPUs: $(nproc), user: $(id -un)"
}

cleanup() {
  stop_server
  rm -rf "$T"
}
trap cleanup EXIT
