#!/usr/bin/env bash
# R30 with the server as the unprivileged user rtest (the automated test runs it as
# root): setsid and double-forked escapees end on close; the one that also cleared its
# environment ends by the time the server has exited after SIGTERM, within 8 s and
# with status 0. Needs root to create and switch to rtest.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/reliability/process_checks_lib.sh
[ "$(id -u)" = 0 ] || { echo "skipped: needs root to create and switch to the user rtest"; exit 0; }
ensure_rtest_user
chmod o+rx "$(dirname "$BIN")" "$BIN" 2>/dev/null
RUNAS=(setpriv --reuid=rtest --regid=rtest --init-groups)
machine
echo "server user: rtest"
start_http --kill-grace 2 || exit 1
mcp_init
S=$(open_s '{}')
type_ "$S" "setsid -f bash -c 'exec -a rtest-R30a sleep 1000'" >/dev/null
type_ "$S" "(setsid bash -c 'exec -a rtest-R30b sleep 1000' &)" >/dev/null
type_ "$S" "setsid -f bash -c 'trap \"\" HUP TERM; exec -a rtest-R30d sleep 1000'" >/dev/null
type_ "$S" "(env -i PATH=\"\$PATH\" setsid bash -c 'exec -a rtest-R30c sleep 1000' &)" >/dev/null
sleep 1
echo "started: a=$(count R30a) b=$(count R30b) c=$(count R30c) d=$(count R30d)"
t0=$(date +%s.%N)
call session_close "{\"session_id\":\"$S\",\"grace\":2}" >/dev/null
t_close=$(python3 -c "import time; print(round(time.time()-$t0,2))")
gone=0
for _ in $(seq 60); do
  if (( $(count R30a) + $(count R30b) + $(count R30d) == 0 )); then gone=1; break; fi
  sleep 0.1
done
echo "close returned after ${t_close}s; a, b, d gone within 6 s: $gone; c alive: $(count R30c); zombies: $(zombies)"
z=$(zombies)
t1=$(date +%s.%N)
kill -TERM "$SPID"; wait "$SPID"; status=$?
t_exit=$(python3 -c "import time; print(round(time.time()-$t1,2))")
SPID=
echo "server exited with status $status after ${t_exit}s; c left: $(count R30c)"
check "close within 6 s" below "$t_close" 6
check "a, b, d gone within 6 s" test "$gone" -eq 1
check "no zombies after close" test "$z" -eq 0
check "c gone after shutdown" test "$(count R30c)" -eq 0
check "shutdown within 8 s" below "$t_exit" 8
check "exit status 0" test "$status" -eq 0
kill_rtest_processes
finish
