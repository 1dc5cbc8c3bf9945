#!/usr/bin/env bash
# R23: a fork bomb in one session, with the server running as the unprivileged user
# rtest under a process limit of 400 (threads count too). Sessions get a lower limit
# (--session-rlimit nproc=300), so the bomb stops before the server runs out of
# threads. Passes when every tools/list answers within 2 s, the other session stays
# readable, the user's process count returns to its value before the bomb within 10 s
# of closing the bomb's session, and a new session opens within 5 s. Needs root (to
# create rtest and switch to it); never run the bomb as root.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/reliability/process_checks_lib.sh
[ "$(id -u)" = 0 ] || { echo "skipped: needs root to create and switch to the user rtest"; exit 0; }
ensure_rtest_user
chmod o+rx "$(dirname "$BIN")" "$BIN" 2>/dev/null
RUNAS=(prlimit --nproc=400:400 setpriv --reuid=rtest --regid=rtest --init-groups)
machine
echo "server user: rtest under prlimit --nproc=400:400; sessions: --session-rlimit nproc=300"
start_http --session-rlimit nproc=300 || exit 1
pid0=$SPID
mcp_init
A=$(open_s '{}')
B=$(open_s '{"argv":["bash","-c","exec -a rtest-R23 sleep 1000"]}')
sleep 1
before=$(pgrep -c -u rtest)
echo "rtest processes before the bomb: $before"
type_ "$A" 'bomb(){ bomb|bomb & }; bomb' >/dev/null
worst_list=0; b_ok=1; peak=0
for _ in $(seq 15); do
  sleep 2
  t=$(curl -s -m 10 -o /dev/null -w '%{time_total}' "${HDR[@]}" -H "Mcp-Session-Id: $SID" -X POST "$URL" -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
  below "$worst_list" "$t" && worst_list=$t
  state=$(call session_read "{\"session_id\":\"$B\",\"view\":\"screen\"}" | get state)
  [ "$state" = running ] || b_ok=0
  n=$(pgrep -c -u rtest); ((n > peak)) && peak=$n
done
echo "during the bomb: slowest tools/list ${worst_list}s, peak rtest tasks (processes) $peak"
t0=$(date +%s.%N)
call session_close "{\"session_id\":\"$A\",\"grace\":2}" >/dev/null
back=0
for _ in $(seq 100); do
  n=$(pgrep -c -u rtest)
  if ((n <= before)); then back=1; break; fi
  sleep 0.1
done
t_back=$(python3 -c "import time; print(round(time.time()-$t0,2))")
echo "process count after close: $(pgrep -c -u rtest) (back to $before after ${t_back}s: $back)"
t1=$(date +%s.%N)
C=$(open_s '{}')
t_open=$(python3 -c "import time; print(round(time.time()-$t1,2))")
echo "new session ${C:-none} opened in ${t_open}s"
panics=$(grep -c -i panic "$T/server.err" || true)
check "server pid unchanged" kill -0 "$pid0"
check "no panic on stderr" test "$panics" -eq 0
check "tools/list within 2 s" below "$worst_list" 2
check "other session alive and readable" test "$b_ok" -eq 1
check "count back within 10 s of close" test "$back" -eq 1
check "new session opens within 5 s" below "$t_open" 5
[[ "$C" =~ ^[0-9a-f-]{36}$ ]] || { echo "FAIL new session id: $C"; FAILED=1; }
stop_server
kill_rtest_processes
finish
