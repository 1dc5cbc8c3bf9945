#!/usr/bin/env bash
# R35: no zombies after sessions, double-forked jobs and execute_command calls, also
# with the server as PID 1 of a PID namespace (as in a container without an init),
# where it still shuts down on SIGTERM with status 0 within 8 s.
# Needs root for the namespace.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/reliability/process_checks_lib.sh
[ "$(id -u)" = 0 ] || { echo "skipped: needs root for unshare --pid"; exit 0; }
ensure_rtest_user
chmod o+rx "$(dirname "$BIN")" "$BIN" 2>/dev/null
machine
workload() {
  local S
  S=$(open_s '{}')
  type_ "$S" 'for i in $(seq 200); do (sleep 0.01 &); done' >/dev/null
  for _ in $(seq 50); do
    local X; X=$(open_s '{"argv":["true"]}')
    call session_close "{\"session_id\":\"$X\",\"grace\":0.5}" >/dev/null
  done
  # execute_command leaves a double-forked job behind each time; the server adopts it
  # as subreaper and must reap it.
  EXECUTED=0
  for _ in $(seq 50); do
    local code
    code=$(call execute_command "{\"command\":\"(sleep 0.1 &); true\",\"cwd\":\"$T\"}" | get exit_code)
    [ "$code" = 0 ] && EXECUTED=$((EXECUTED + 1))
  done
  echo "execute_command calls that exited with 0: $EXECUTED of 50"
  sleep 5
}

echo "run 1: server as PID 1 of a new PID namespace, as rtest"
unshare --pid --fork --mount-proc setpriv --reuid=rtest --regid=rtest --init-groups \
  env -i PATH="$PATH" HOME="$T" "$BIN" --http --host 127.0.0.1 --port "$PORT" 2>>"$T/server.err" &
UPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
HPID=$(pgrep -P "$UPID" | head -1)
echo "unshare pid $UPID; server pid on the host $HPID; inside: $(nsenter -t "$HPID" -p -m ps -o pid= -p 1 | tr -d ' ') is $(nsenter -t "$HPID" -p -m ps -o comm= -p 1)"
SPID=$HPID
mcp_init
workload
z1=$(nsenter -t "$HPID" -p -m ps -eo stat= | grep -c '^Z' || true)
t0=$(date +%s.%N)
kill -TERM "$HPID"; wait "$UPID"; status=$?
t_exit=$(python3 -c "import time; print(round(time.time()-$t0,2))")
SPID=
echo "zombies in the namespace: $z1; exit status $status after ${t_exit}s"
check "PID 1: no zombies" test "$z1" -eq 0
check "PID 1: 50 execute_command calls ran" test "$EXECUTED" -eq 50
check "PID 1: SIGTERM exits with 0" test "$status" -eq 0
check "PID 1: exit within 8 s" below "$t_exit" 8

echo "run 2: normal process"
start_http || exit 1
mcp_init
workload
z2=$(zombies)
echo "zombies among the server's children: $z2"
check "normal: no zombies" test "$z2" -eq 0
check "normal: 50 execute_command calls ran" test "$EXECUTED" -eq 50
kill_rtest_processes
finish
