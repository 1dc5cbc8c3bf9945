#!/usr/bin/env bash
# R03, browser variant. A page served from another loopback origin runs fetch() POSTs
# of an MCP initialize and a session_open to the server in Debian's headless Chromium.
# It sends them as simple requests (text/plain, no preflight) and as preflighted ones
# (JSON and MCP headers). Pass: the server rejects each of them with 403 and logs the rejection, no
# MCP session and no session process is created, and the page reads no response. A
# control run with the page's origin allowed shows the same harness seeing acceptance.
#
# Not part of .ci/run, because it needs Chromium (apt-get install -y chromium; the script
# installs it when run as root). Chromium talks to 127.0.0.1 only: background
# networking, component updates, sync and QUIC are off.
# Usage: tests/reliability/r03_browser_origin.sh (from the repository root; BIN, PORT).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/reliability/lib.sh
PAGE_PORT=$((PORT + 1))
ORIGIN=http://127.0.0.1:$PAGE_PORT
PAGE_URL="$ORIGIN/?mcp=$URL"
CHROMIUM=${CHROMIUM:-chromium}

if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "FAIL: chromium not found; install it with: apt-get install -y chromium"
    exit 1
  fi
  apt-get install -y -qq chromium >/dev/null
fi
machine
echo "chromium: $("$CHROMIUM" --version)"

PAGE_PID=
BROWSER_PID=
stop_page_and_browser() {
  if [[ -n $BROWSER_PID ]]; then
    # Chromium runs in a process group of its own (setsid), ended as a whole.
    kill -TERM -- "-$BROWSER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$BROWSER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$BROWSER_PID" 2>/dev/null || true
    wait "$BROWSER_PID" 2>/dev/null || true
    BROWSER_PID=
  fi
  if [[ -n $PAGE_PID ]]; then
    kill -TERM "$PAGE_PID" 2>/dev/null || true
    wait "$PAGE_PID" 2>/dev/null || true
    PAGE_PID=
  fi
}
trap 'stop_page_and_browser; cleanup' EXIT

failures=0
check() { # check DESCRIPTION CONDITION...
  local description=$1
  shift
  if "$@"; then echo "pass: $description"; else echo "FAIL: $description"; failures=$((failures + 1)); fi
}

# load_page RUN: serves the page, loads it in Chromium until it reports "done" (at most
# 30 s), and stops both. Leaves $T/RUN.reports and Chromium's network log $T/RUN.netlog.
load_page() {
  local run=$1
  : >"$T/$run.reports"
  python3 tests/reliability/r03_browser/serve.py "$PAGE_PORT" "$T/$run.reports" 2>>"$T/page.err" &
  PAGE_PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null "$ORIGIN/" && break; sleep 0.1; done
  # Even with background networking off, Chromium 156 still requests Google's update and
  # account hosts; the resolver rule fails every name but 127.0.0.1 without a lookup.
  setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
    --user-data-dir="$T/chromium-$run" --log-net-log="$T/$run.netlog" \
    "$PAGE_URL" >>"$T/chromium.out" 2>&1 &
  BROWSER_PID=$!
  for _ in $(seq 300); do grep -q '^done:' "$T/$run.reports" && break; sleep 0.1; done
  stop_page_and_browser
  echo "page reports ($run):"
  sed 's/^/  /' "$T/$run.reports"
}

# Response status lines Chromium received from the server, one per line.
statuses() { grep -o "HTTP/1.1 [0-9][0-9][0-9][^\"]*" "$T/$1.netlog" || true; }

# Hosts of every URL Chromium requested (the network log lists each request's URL).
requested_hosts() {
  grep -o '"url":"[a-z-]*://[^/"]*' "$T/$1.netlog" | sed 's/.*:\/\///' | sort -u || true
}

# Remote addresses of every TCP connection Chromium opened.
connected_addresses() {
  grep -o '"remote_address":"[^"]*"' "$T/$1.netlog" | cut -d'"' -f4 | sort -u || true
}

# Socket addresses in the network log other than 127.0.0.1. Chromium's IPv6 reachability
# probe connects a UDP socket to 2001:4860:4860::8888 to learn the local route, and
# connect() on a UDP socket sends nothing; TCP connections are checked above.
other_addresses() {
  grep -o '"address":"[^"]*"' "$T/$1.netlog" | cut -d'"' -f4 | grep -v '^127\.0\.0\.1:' | sort -u || true
}

echo "--- foreign origin $ORIGIN"
start_http --max-clients 1
load_page foreign
rejected_post=$(grep -c "request rejected.*method=POST.*$ORIGIN" "$T/server.err" || true)
rejected_options=$(grep -c "request rejected.*method=OPTIONS.*$ORIGIN" "$T/server.err" || true)
forbidden=$(statuses foreign | grep -c '^HTTP/1.1 403' || true)
succeeded=$(statuses foreign | grep -c '^HTTP/1.1 2' || true)
echo "server log: $rejected_post POST and $rejected_options OPTIONS requests rejected for $ORIGIN"
echo "responses Chromium received from the server: $(statuses foreign | sort | uniq -c | tr -s ' ' | paste -sd, -)"
echo "hosts Chromium requested: $(requested_hosts foreign | paste -sd' ' -)"
echo "TCP connections Chromium opened: $(connected_addresses foreign | paste -sd' ' -)"
echo "other socket addresses in the network log: $(other_addresses foreign | paste -sd' ' -)"
sed -n "/request rejected/{s/^/  /;p;q}" "$T/server.err"
check "the page ran every request" grep -q '^done:' "$T/foreign.reports"
check "the server logged each simple POST as rejected (3)" test "$rejected_post" -ge 3
check "the server logged each preflight as rejected (2)" test "$rejected_options" -ge 2
check "Chromium received 403 for every request to the server (5)" test "$forbidden" -ge 5
check "Chromium received no 2xx from the server" test "$succeeded" -eq 0
unread=$(grep -v '^done:' "$T/foreign.reports" | grep -c -v -E ': (type=opaque status=0 session=null body=|error=TypeError)$' || true)
check "the page read no status, header or body of any response" test "$unread" -eq 0
check "no session process started (count R03 is 0)" test "$(pgrep -c -f '^rtest-R03' || true)" -eq 0
# With --max-clients 1, an MCP session opened by the page would make this one get 503.
status=$(curl -s -D "$T/headers" -o /dev/null -w '%{http_code}' "${HDR[@]}" -X POST "$URL" -d "$INIT")
check "the page opened no MCP session (a plain client still gets the only slot: $status)" \
  test "$status" = 200
check "Chromium opened TCP connections to 127.0.0.1 only" \
  test -z "$(connected_addresses foreign | grep -v -E '^127\.0\.0\.1:[0-9]+$')"
check "Chromium connected to the server and the page" \
  test "$(connected_addresses foreign | grep -c -E ":($PORT|$PAGE_PORT)$")" -eq 2
stop_server

echo "--- control: the same page with --allowed-origin $ORIGIN"
: >"$T/server.err"
start_http --max-clients 1 --allowed-origin "$ORIGIN"
load_page allowed
passed_gate=$(statuses allowed | grep -c -v '^HTTP/1.1 403' || true)
echo "responses Chromium received from the server: $(statuses allowed | sort | uniq -c | tr -s ' ' | paste -sd, -)"
check "control: the server rejected no request of the allowed origin" \
  test "$(grep -c 'request rejected' "$T/server.err" || true)" -eq 0
# Past the gate, rmcp answers these requests itself: 406 without the Accept header a
# simple request cannot set, 405 to a preflight.
check "control: Chromium received no 403, and answers from past the gate (5)" \
  test "$(statuses allowed | grep -c '^HTTP/1.1 403' || true)" -eq 0 -a "$passed_gate" -ge 5
pkill_count=$(pgrep -c -f '^rtest-R03' || true)
echo "control: R03 marker processes: $pkill_count (a no-cors request cannot carry Mcp-Session-Id)"
stop_server

if ((failures)); then
  echo "verdict: FAIL ($failures checks failed)"
  exit 1
fi
echo "verdict: pass"
