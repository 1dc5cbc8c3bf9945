#!/usr/bin/env bash
# Runs the recipes in deploy/ for real, against a built server binary:
#   - the server's own side: exit statuses, sd_notify, --ready-fd, JSON logs;
#   - a real s6-svscan and a real supervisord, each with a temporary copy of the
#     repository's configuration whose paths, users and port are substituted;
#   - systemd-analyze, apparmor_parser, logrotate, hadolint and dclint on the files.
# A check that cannot run here prints "skipped:" with the reason. Every process the
# script starts is stopped by its pid before it exits.
#
# Usage: tests/deploy/run.sh BINARY
# Optional variables: HADOLINT and DCLINT, paths to those linters when not on PATH.
set -uo pipefail

binary=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$root/deploy

passed=0
failed=0
skipped=0
pids_to_stop=()

pass() {
  echo "ok: $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAILED: $*"
  failed=$((failed + 1))
}
skip() {
  echo "skipped: $*"
  skipped=$((skipped + 1))
}
# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() {
  local description=$1
  shift
  if "$@"; then pass "$description"; else fail "$description"; fi
}
# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it exits 0 or the time is up.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  wait_until 20 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
cleanup() {
  local pid
  for pid in "${pids_to_stop[@]}"; do stop_pid "$pid"; done
  # Sessions that a failed check left behind run as the test's own service user.
  if id "$service_user" >/dev/null 2>&1; then
    for pid in $(ps -u "$service_user" -o pid=); do kill -KILL "$pid" 2>/dev/null; done
  fi
  rm -rf "$work"
}

service_user=mcp-deploy-test
log_user=mcp-deploy-log
work=$(mktemp -d /tmp/mcp-deploy-test.XXXXXX)
chmod 755 "$work"
trap cleanup EXIT
mkdir -p "$work/bin"
install -m 0755 "$binary" "$work/bin/mcp-terminal-server"
server=$work/bin/mcp-terminal-server

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the server's side --------------------------------------------------------------

echo "--- server: exit statuses, readiness, log format"

"$server" --http --host 0.0.0.0 --port 0 </dev/null >/dev/null 2>"$work/exit2.log"
status=$?
check "binding 0.0.0.0 without a token exits with status 2 (got $status)" test "$status" -eq 2
check "the configuration error is logged" grep -q "missing bearer token" "$work/exit2.log"

"$server" --idle-timeout -1 </dev/null >/dev/null 2>"$work/exit2b.log"
status=$?
check "an invalid flag value exits with status 2 (got $status)" test "$status" -eq 2

python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(30)' >"$work/busy-port" &
holder=$!
pids_to_stop+=("$holder")
wait_until 10 test -s "$work/busy-port"
"$server" --http --port "$(cat "$work/busy-port")" </dev/null >/dev/null 2>"$work/exit1.log"
status=$?
check "a port in use exits with status 1 (got $status)" test "$status" -eq 1
stop_pid "$holder"

# sd_notify: the test binds a datagram socket and passes its path as NOTIFY_SOCKET.
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(30)
with open(sys.argv[2], "w") as out:
    for _ in range(2):
        out.write(s.recv(4096).decode()); out.flush()' "$work/notify.sock" "$work/notify.out" &
listener=$!
pids_to_stop+=("$listener")
wait_until 10 test -S "$work/notify.sock"
ready_pipe=$work/ready.fifo
mkfifo "$ready_pipe"
NOTIFY_SOCKET=$work/notify.sock "$server" --http --port 0 --log-format json --ready-fd 3 \
  </dev/null >/dev/null 2>"$work/json.log" 3>"$ready_pipe" &
notified=$!
pids_to_stop+=("$notified")
# Reading the FIFO returns the newline once the server writes it, and end of file when
# it closes the descriptor.
ready_line=$(timeout 20 cat "$ready_pipe" | od -An -c | tr -d ' ')
check "--ready-fd receives one newline, then end of file (got '$ready_line')" test "$ready_line" = '\n'
check "NOTIFY_SOCKET receives READY=1 with the address" \
  wait_until 10 grep -q "^STATUS=listening on 127.0.0.1:" "$work/notify.out"
check "READY=1 comes first" grep -qx "READY=1" "$work/notify.out"
kill -TERM "$notified"
wait "$notified"
status=$?
check "SIGTERM exits with status 0 (got $status)" test "$status" -eq 0
check "NOTIFY_SOCKET receives STOPPING=1 at shutdown" wait_until 10 grep -qx "STOPPING=1" "$work/notify.out"
wait "$listener" 2>/dev/null

# A NOTIFY_SOCKET value that starts with @ names a socket in the abstract namespace.
abstract_name=mcp-deploy-test-$$
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("\0" + sys.argv[1]); s.settimeout(30)
print("bound", flush=True)
open(sys.argv[2], "w").write(s.recv(4096).decode())' "$abstract_name" "$work/abstract.out" >"$work/abstract.bound" &
listener=$!
pids_to_stop+=("$listener")
wait_until 10 test -s "$work/abstract.bound"
NOTIFY_SOCKET=@$abstract_name "$server" --http --port 0 </dev/null >/dev/null 2>"$work/abstract.log" &
notified=$!
pids_to_stop+=("$notified")
check "an abstract NOTIFY_SOCKET (@name) receives READY=1" \
  wait_until 10 grep -qx "READY=1" "$work/abstract.out"
stop_pid "$notified"
wait "$listener" 2>/dev/null
check "--log-format json writes one JSON object per line" python3 -c 'import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
events = [json.loads(line) for line in lines]
assert all({"timestamp", "level", "message"} <= set(e) for e in events), events
assert any(e["message"] == "listening" and "port" in e for e in events), events' "$work/json.log"
if ((EUID == 0)); then
  check "running as root logs a warning" grep -q "running as root" "$work/json.log"
fi
check "text logs carry no colour codes" bash -c "! grep -q $'\e' '$work/exit1.log'"

# --- s6 and supervisord ---------------------------------------------------------------

ensure_user() {
  id "$1" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /bin/bash "$1"
}

# substitute FILE...: points copies of the recipes at this run's binary, directories,
# users and port, then checks that no installed path is left.
substitute() {
  sed -i \
    -e "s|/usr/local/bin/mcp-terminal-server|$server|g" \
    -e "s|/var/lib/mcp-terminal|$work/home|g" \
    -e "s|/var/log/mcp-terminal|$work/s6-log|g" \
    -e "s|/var/log/supervisor/mcp-terminal.log|$work/supervisor/mcp-terminal.log|g" \
    -e "s|s6-setuidgid mcp-terminal-log|s6-setuidgid $log_user|" \
    -e "s|s6-setuidgid mcp-terminal |s6-setuidgid $service_user |" \
    -e "s|pkill -KILL -U mcp-terminal\$|pkill -KILL -U $service_user|" \
    -e "s|^user=mcp-terminal\$|user=$service_user|" \
    -e "s|USER=\"mcp-terminal\"|USER=\"$service_user\"|" \
    -e "s|--port 8080|--port $port|" \
    "$@"
  local file left=0
  for file in "$@"; do
    if sed '/^[[:space:]]*[#;]/d' "$file" |
      grep -n -E '/usr/local/bin/mcp|/var/lib/mcp|/var/log/|mcp-terminal(-log)?( |$|")|8080'; then
      echo "left unsubstituted in $file"
      left=1
    fi
  done
  return "$left"
}

# runs_as PID USER: the process's real, effective, saved and filesystem uids are USER's.
runs_as() {
  local uid
  uid=$(id -u "$2")
  [[ $(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status") == "$uid $uid $uid $uid" ]]
}

# ended PID: the process is gone or a zombie.
ended() {
  local state
  state=$(ps -o stat= -p "$1")
  [[ -z $state || $state == Z* ]]
}

# user_has_no_processes USER: USER runs nothing but zombies.
user_has_no_processes() {
  ! ps -u "$1" -o stat= | grep -qv '^Z'
}

# open_session PORT COMMAND: opens a terminal session over MCP and prints the JSON
# summary from mcp_call.py.
open_session() {
  python3 "$root/tests/deploy/mcp_call.py" "$1" "$2"
}

# json_field JSON NAME: one field of a JSON object.
json_field() {
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# log_has FILE TEXT: the file exists and contains TEXT.
log_has() { [[ -f $1 ]] && grep -q -- "$2" "$1"; }

run_s6() {
  echo "--- s6: deploy/s6/mcp-terminal under s6-svscan"
  local scan=$work/s6-scan service port old_pid new_pid started pid
  service=$scan/mcp-terminal
  port=$(free_port)
  mkdir -p "$scan" "$work/home" "$work/s6-log"
  cp -a "$deploy/s6/mcp-terminal" "$service"
  chown "$service_user:$service_user" "$work/home"
  chmod 700 "$work/home"
  chown "$log_user:$log_user" "$work/s6-log"
  printf '%s\n' "$work/home" >"$service/env/HOME"
  printf '%s\n' "$service_user" >"$service/env/USER"
  printf '%s\n' "$port" >"$service/env/MCP_PORT"
  if ! substitute "$service/run" "$service/finish" "$service/log/run"; then
    fail "s6 recipe paths substituted"
    return
  fi
  check "s6 run script has valid shell syntax" sh -n "$service/run"
  check "s6 finish script has valid shell syntax" sh -n "$service/finish"
  check "s6 log/run script has valid shell syntax" sh -n "$service/log/run"

  s6-svscan "$scan" >"$work/s6-svscan.log" 2>&1 &
  local svscan=$!
  pids_to_stop+=("$svscan")
  if ! wait_until 10 s6-svok "$service"; then
    fail "s6-supervise started for the service"
    cat "$work/s6-svscan.log"
    return
  fi
  check "s6 reports the service up and ready (notification-fd)" \
    s6-svwait -U -t 20000 "$service"
  pid=$(s6-svstat -o pid "$service")
  check "s6 server runs as $service_user (pid $pid)" runs_as "$pid" "$service_user"
  check "s6 server is the built binary" test "$(readlink "/proc/$pid/exe")" = "$server"
  check "health-check.sh passes under s6" "$deploy/health-check.sh" 127.0.0.1 "$port"

  # A session whose shell starts a nohup job, then waits in the foreground.
  local session session_pid job_text job_pid
  session=$(open_session "$port" 'id -un; nohup sleep 1001 >/dev/null 2>&1 & echo "job $!"; exec sleep 1000')
  session_pid=$(json_field "$session" pid)
  job_text=$(json_field "$session" text)
  job_pid=$(sed -n 's/^job \([0-9]*\)$/\1/p' <<<"$job_text")
  check "a session under s6 reports $service_user from id -un" \
    test "$(head -n 1 <<<"$job_text")" = "$service_user"
  check "the session's process runs as $service_user (pid $session_pid)" \
    runs_as "$session_pid" "$service_user"
  check "the session's nohup job runs as $service_user (pid $job_pid)" \
    runs_as "$job_pid" "$service_user"
  check "s6-log writes the server's lines to the log directory" \
    wait_until 10 log_has "$work/s6-log/current" "listening"
  check "s6-log lines start with an ISO 8601 time" \
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ ' "$work/s6-log/current"
  check "the service user's server does not warn about root" \
    bash -c "! grep -q 'running as root' '$work/s6-log/current'"
  check "s6-log runs as $log_user" \
    bash -c "pgrep -u $log_user -x s6-log >/dev/null"

  old_pid=$pid
  started=$SECONDS
  kill -KILL "$old_pid"
  restarted() {
    new_pid=$(s6-svstat -o pid "$service")
    [[ $new_pid != "$old_pid" && $new_pid -gt 0 ]] && s6-svwait -U -t 100 "$service" 2>/dev/null
  }
  if wait_until 10 restarted; then
    pass "s6 restarts the killed server (pid $old_pid -> $new_pid, ready within $((SECONDS - started)) s)"
    check "health-check.sh passes after the restart" "$deploy/health-check.sh" 127.0.0.1 "$port"
  else
    fail "s6 restarts the killed server within 10 s"
  fi
  check "the killed server's session process has ended" wait_until 10 ended "$session_pid"
  check "the finish script killed the session's nohup job" wait_until 10 ended "$job_pid"

  # A stop, unlike a kill, lets the server end its sessions' trees itself.
  session=$(open_session "$port" 'nohup sleep 1001 >/dev/null 2>&1 & echo "job $!"; exec sleep 1000')
  job_pid=$(sed -n 's/^job \([0-9]*\)$/\1/p' <<<"$(json_field "$session" text)")
  check "a second session's nohup job runs (pid $job_pid)" runs_as "$job_pid" "$service_user"

  s6-svc -d "$service"
  check "s6-svc -d stops the server" s6-svwait -D -t 20000 "$service"
  check "the server exits with status 0 on s6-svc -d" test "$(s6-svstat -o exitcode "$service")" = 0
  check "the server logs its clean stop" wait_until 10 log_has "$work/s6-log/current" "server stopped"
  check "the server closed its session on stop" \
    grep -q "sessions_closed=1" "$work/s6-log/current"
  check "no process of $service_user is left after s6-svc -d" \
    wait_until 10 user_has_no_processes "$service_user"

  # A configuration error (exit status 2) makes the finish script keep the service down.
  printf '0.0.0.0\n' >"$service/env/MCP_HOST"
  s6-svc -u "$service"
  settled_down() {
    [[ $(s6-svstat -o up,wantedup,exitcode "$service") == "false false 2" ]]
  }
  check "s6 keeps the service down after exit status 2 (finish exits 125)" wait_until 15 settled_down
  check "the finish script logs why" wait_until 10 log_has "$work/s6-log/current" "configuration error"

  stop_pid "$svscan"
  check "no process of $service_user is left after s6-svscan stops" \
    wait_until 10 user_has_no_processes "$service_user"
}

run_supervisor() {
  echo "--- supervisord: deploy/supervisor/mcp-terminal.conf"
  local dir=$work/supervisor port old_pid new_pid started pid ctl
  port=$(free_port)
  mkdir -p "$dir/conf.d" "$work/home"
  chown "$service_user:$service_user" "$work/home"
  cp "$deploy/supervisor/mcp-terminal.conf" "$dir/conf.d/"
  if ! substitute "$dir/conf.d/mcp-terminal.conf"; then
    fail "supervisor recipe paths substituted"
    return
  fi
  cat >"$dir/supervisord.conf" <<EOF
[unix_http_server]
file=$dir/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile=$dir/supervisord.log
pidfile=$dir/supervisord.pid
childlogdir=$dir

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$dir/supervisor.sock

[include]
files = $dir/conf.d/*.conf
EOF
  ctl=(supervisorctl -c "$dir/supervisord.conf")
  supervisord -n -c "$dir/supervisord.conf" >"$dir/stdout.log" 2>&1 &
  local supervisor=$!
  pids_to_stop+=("$supervisor")
  running() { "${ctl[@]}" status mcp-terminal 2>/dev/null | grep -q RUNNING; }
  if ! wait_until 20 running; then
    fail "supervisord starts the server"
    cat "$dir/supervisord.log"
    return
  fi
  pass "supervisord starts the server"
  check "health-check.sh passes under supervisord" \
    wait_until 10 "$deploy/health-check.sh" 127.0.0.1 "$port"
  pid=$("${ctl[@]}" pid mcp-terminal)
  check "supervisord server runs as $service_user (pid $pid)" runs_as "$pid" "$service_user"
  check "supervisord writes the server's lines to its log file" \
    wait_until 10 log_has "$dir/mcp-terminal.log" "listening"
  local session session_pid
  session=$(open_session "$port" 'id -un; exec sleep 1000')
  session_pid=$(json_field "$session" pid)
  check "a session under supervisord reports $service_user from id -un" \
    test "$(head -n 1 <<<"$(json_field "$session" text)")" = "$service_user"
  check "the session's process runs as $service_user (pid $session_pid)" \
    runs_as "$session_pid" "$service_user"

  old_pid=$pid
  started=$SECONDS
  kill -KILL "$old_pid"
  restarted() {
    new_pid=$("${ctl[@]}" pid mcp-terminal 2>/dev/null)
    [[ $new_pid != "$old_pid" && $new_pid -gt 0 ]] && "$deploy/health-check.sh" 127.0.0.1 "$port" >/dev/null 2>&1
  }
  if wait_until 15 restarted; then
    pass "supervisord restarts the killed server (pid $old_pid -> $new_pid, healthy within $((SECONDS - started)) s)"
  else
    fail "supervisord restarts the killed server within 15 s"
  fi
  check "the killed server's session process has ended (terminal hangup)" \
    wait_until 10 ended "$session_pid"
  session=$(open_session "$port" 'nohup sleep 1001 >/dev/null 2>&1 & exec sleep 1000')

  "${ctl[@]}" stop mcp-terminal >/dev/null
  check "supervisorctl stop leaves the program STOPPED" \
    bash -c "'${ctl[0]}' -c '$dir/supervisord.conf' status mcp-terminal | grep -q STOPPED"
  check "the server logs its clean stop" wait_until 10 log_has "$dir/mcp-terminal.log" "server stopped"
  check "no process of $service_user is left after supervisorctl stop, nohup job included" \
    wait_until 10 user_has_no_processes "$service_user"

  stop_pid "$supervisor"
}

if ((EUID != 0)); then
  skip "s6 and supervisord runs: they need root to create the test users and switch to them"
elif ! ensure_user "$service_user" || ! ensure_user "$log_user"; then
  fail "create the test users $service_user and $log_user"
else
  if command -v s6-svscan >/dev/null; then run_s6; else skip "s6: s6-svscan is not installed"; fi
  rm -rf "$work/home"
  if command -v supervisord >/dev/null; then
    run_supervisor
  else
    skip "supervisord: not installed"
  fi
fi

# --- files checked by their own tools ---------------------------------------------------

echo "--- systemd unit, AppArmor profile, logrotate, Docker files"

if command -v systemd-analyze >/dev/null; then
  # verify checks that ExecStart exists, so the copy points at this run's binary.
  # It exits 0 even for unknown keys and invalid values and only prints them, so any
  # output is a failure.
  mkdir -p "$work/systemd"
  sed "s|/usr/local/bin/mcp-terminal-server|$server|" \
    "$deploy/systemd/mcp-terminal.service" >"$work/systemd/mcp-terminal.service"
  verify_output=$(systemd-analyze verify --man=no "$work/systemd/mcp-terminal.service" 2>&1)
  status=$?
  if ((status == 0)) && [[ -z $verify_output ]]; then
    pass "systemd-analyze verify: no findings"
  else
    fail "systemd-analyze verify (status $status): $verify_output"
  fi
  exposure=$(systemd-analyze security --offline=yes "$work/systemd/mcp-terminal.service" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  check "systemd-analyze security: exposure ${exposure:-unknown} is at most 4.0" \
    python3 -c 'import sys; sys.exit(not (sys.argv[1] and float(sys.argv[1]) <= 4.0))' "${exposure:-}"
else
  skip "systemd unit: systemd-analyze is not installed"
fi

if command -v apparmor_parser >/dev/null; then
  # -Q parses and compiles without loading into the kernel, -K and -T skip the cache.
  # Without AppArmor in the kernel it also prints that the cache is disabled, which is
  # shown only when the parse fails.
  if parser_output=$(apparmor_parser -Q -K -T "$deploy/apparmor/mcp-terminal-server" 2>&1); then
    pass "apparmor_parser -Q parses the profile"
  else
    fail "apparmor_parser -Q: $parser_output"
  fi
else
  skip "AppArmor profile: apparmor_parser is not installed"
fi

if command -v logrotate >/dev/null; then
  mkdir -p "$work/logrotate"
  sed "s|/var/log/supervisor/mcp-terminal.log|$work/logrotate/mcp-terminal.log|" \
    "$deploy/logrotate/mcp-terminal" >"$work/logrotate/mcp-terminal.conf"
  echo "a log line" >"$work/logrotate/mcp-terminal.log"
  debug_output=$(logrotate -d -s "$work/logrotate/state" "$work/logrotate/mcp-terminal.conf" 2>&1)
  status=$?
  if ((status == 0)) && ! grep -qi "error" <<<"$debug_output"; then
    pass "logrotate -d: no errors"
  else
    fail "logrotate -d (status $status): $debug_output"
  fi
  logrotate -f -s "$work/logrotate/state" "$work/logrotate/mcp-terminal.conf"
  check "logrotate -f rotates the log (copy kept, original truncated)" \
    bash -c "grep -q 'a log line' '$work/logrotate/mcp-terminal.log.1' && test ! -s '$work/logrotate/mcp-terminal.log'"
else
  skip "logrotate file: logrotate is not installed"
fi

hadolint=${HADOLINT:-$(command -v hadolint)}
if [[ -x $hadolint ]]; then
  check "hadolint: no findings in deploy/docker/Dockerfile" \
    "$hadolint" --no-color "$deploy/docker/Dockerfile"
else
  skip "Dockerfile lint: hadolint is not installed"
fi
dclint=${DCLINT:-$(command -v dclint)}
if [[ -x $dclint ]]; then
  check "dclint: deploy/docker/compose.yaml matches the Compose schema, no warnings" \
    "$dclint" --max-warnings 0 "$deploy/docker/compose.yaml"
else
  skip "compose lint: dclint is not installed"
fi
if docker info >/dev/null 2>&1; then
  skip "docker build: an engine is reachable, but this script does not build images"
else
  skip "docker build: no Docker engine runs here (docker info fails), so the image is not built or run"
fi

echo "deploy recipes: $passed checks met, $failed not met, $skipped skipped"
((failed == 0))
