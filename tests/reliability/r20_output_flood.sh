#!/usr/bin/env bash
# R20: 60 s of `yes` in one session. The server's RSS stays under 128 MiB and grows by
# less than 4 MiB between t = 20 s and t = 60 s; other sessions' calls stay fast
# (tools/list p99 < 500 ms, session_read p95 < 500 ms and each < 300 ms at t = 30 s);
# the flooding session keeps at most 10 000 + 24 history rows; after it closes, RSS
# returns within 16 MiB of the start. About 90 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/reliability/process_checks_lib.sh
machine
start_http --scrollback 10000 || exit 1
mcp_init
B=$(open_s '{"rows":24,"cols":80}')
sleep 1
rss0=$(rss)
A=$(open_s '{"argv":["yes"],"rows":24,"cols":80}')
max_rss=0; rss20=0
reads=()
for t in $(seq 5 5 60); do
  sleep 5
  now=$(rss)
  ((now > max_rss)) && max_rss=$now
  ((t == 20)) && rss20=$now
  reads+=("$(lat session_read "{\"session_id\":\"$B\",\"view\":\"screen\"}")")
  if ((t == 30)); then
    p99_30=$(p99)
    read_30=$(lat session_read "{\"session_id\":\"$B\",\"view\":\"screen\"}")
  fi
  echo "t=${t}s rss=${now}kB"
done
rss60=$(rss)
rows=$(call session_read "{\"session_id\":\"$A\",\"view\":\"scrollback\",\"max_chars\":10000000}" |
       python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]["structuredContent"]; print(r["text"].count("\n")+1)')
p95_reads=$(printf '%s\n' "${reads[@]}" | sort -n | python3 -c 'import sys; v=[float(x) for x in sys.stdin]; print(v[max(0,int(len(v)*0.95+0.5)-1)])')
call session_close "{\"session_id\":\"$A\",\"grace\":2}" >/dev/null
min_after=999999999
for _ in $(seq 10); do sleep 1; now=$(rss); ((now < min_after)) && min_after=$now; done
echo "rss start=${rss0}kB max=${max_rss}kB t20=${rss20}kB t60=${rss60}kB after-close(min over 10 s)=${min_after}kB"
echo "tools/list p99 at 30 s=${p99_30}s; B read at 30 s=${read_30}s; B reads p95 over 60 s=${p95_reads}s"
echo "A scrollback rows=${rows}"
check "rss below 128 MiB" test "$max_rss" -lt $((128 * 1024))
check "rss growth t20..t60 below 4 MiB" test $((rss60 - rss20)) -lt 4096
check "tools/list p99 below 500 ms" below "$p99_30" 0.5
check "B read below 300 ms" below "$read_30" 0.3
check "B reads p95 below 500 ms" below "$p95_reads" 0.5
check "scrollback at most 10024 rows" test "$rows" -le 10024
check "rss back within 16 MiB" test $((min_after - rss0)) -lt $((16 * 1024))
finish
