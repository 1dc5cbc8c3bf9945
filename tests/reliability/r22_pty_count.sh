#!/usr/bin/env bash
# R22, kernel part: 500 sessions of `true` and 100 shells, opened and closed, bring the
# kernel's count of open terminals (/proc/sys/kernel/pty/nr) back to its start value.
# The count is machine-wide, so run this on a machine where nothing else opens
# terminals. The test containment::session_cap_holds_under_pressure checks the
# server's own terminal descriptors on every CI run. Usage, from the repository root:
# BIN=./target/release/mcp-terminal-server tests/reliability/r22_pty_count.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
PORT=${PORT:-18222}
source tests/reliability/lib.sh
machine

pty_nr() { cat /proc/sys/kernel/pty/nr; }
zombies() { ps -o stat= --ppid "$SPID" | grep -c '^Z' || true; }
cycle() { # cycle COUNT 'OPEN-ARGS': opens and closes COUNT sessions, one at a time
  local id
  for _ in $(seq "$1"); do
    id=$(call session_open "$2" | get session_id)
    call session_close "{\"session_id\":\"$id\",\"grace\":0.5}" >/dev/null
  done
}

start_http --max-sessions 32 --kill-grace 0.5 || { echo "FAIL: the server did not start"; exit 1; }
mcp_init
start_nr=$(pty_nr) start_fds=$(nfd) start_rss=$(rss)
echo "start: pty/nr $start_nr, fds $start_fds, rss $start_rss KiB"
cycle 500 '{"argv":["true"]}'
cycle 100 '{"argv":["bash","--norc","--noprofile"]}'
# Closed terminals are released as their last holder exits; allow 10 s for that.
for _ in $(seq 100); do
  [ "$(pty_nr)" -le "$start_nr" ] && [ "$(zombies)" -eq 0 ] && break
  sleep 0.1
done
end_nr=$(pty_nr) end_fds=$(nfd) end_rss=$(rss) end_zombies=$(zombies)
echo "after 600 sessions: pty/nr $end_nr, fds $end_fds, rss $end_rss KiB, zombies $end_zombies"

failures=()
[ "$end_nr" -eq "$start_nr" ] || failures+=("pty/nr $start_nr -> $end_nr")
[ $((end_fds - start_fds)) -le 2 ] && [ $((start_fds - end_fds)) -le 2 ] ||
  failures+=("fds $start_fds -> $end_fds")
[ $((end_rss - start_rss)) -lt 8192 ] || failures+=("rss $start_rss -> $end_rss KiB")
[ "$end_zombies" -eq 0 ] || failures+=("$end_zombies zombies")
if ((${#failures[@]})); then
  echo "R22: FAIL: ${failures[*]}"
  exit 1
fi
echo "R22: PASS"
