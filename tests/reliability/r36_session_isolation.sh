#!/usr/bin/env bash
# R36: a session running as the server's own (unprivileged) user cannot read the
# server's environment or memory, attach to it with ptrace or open its descriptors,
# and inherits none of its secrets and only its terminal on fds 0-2 (plus bash's 255).
# Needs root to create and switch to the user rtest.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/reliability/process_checks_lib.sh
[ "$(id -u)" = 0 ] || { echo "skipped: needs root to create and switch to the user rtest"; exit 0; }
ensure_rtest_user
chmod o+rx "$(dirname "$BIN")" "$BIN" 2>/dev/null
RUNAS=(setpriv --reuid=rtest --regid=rtest --init-groups)
TOK=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
SENV=(MCP_AUTH_TOKEN="$TOK")
HDR+=(-H "Authorization: Bearer $TOK")
machine
echo "server user: rtest, with MCP_AUTH_TOKEN and RTEST_CANARY in its environment"
start_http || exit 1
mcp_init
S=$(open_s '{"cols":200,"rows":50}')
out() { type_ "$S" "$1" | get text; }
environ=$(out "cat /proc/$SPID/environ; echo rc=\$?")
mem=$(out "head -c1 /proc/$SPID/mem; echo rc=\$?")
ptrace=$(out "python3 -c \"import ctypes,os;l=ctypes.CDLL(None,use_errno=True);print(l.ptrace(16,$SPID,0,0),os.strerror(ctypes.get_errno()))\"")
fd1=$(out "(exec 3>/proc/$SPID/fd/1); echo rc=\$?")
grep_env=$(out "env | grep -e RTEST_CANARY -e '$TOK' -e '^MCP_' | grep -vc '^MCP_TERMINAL_NONCE='")
fds=$(out 'ls -l /proc/$$/fd | awk "NR > 1 { print \$9, \$11 }"')
printf 'environ:\n%s\nmem:\n%s\nptrace:\n%s\nfd1:\n%s\ngrep:\n%s\nfds:\n%s\n' "$environ" "$mem" "$ptrace" "$fd1" "$grep_env" "$fds"
denied() { grep -q -e 'Permission denied' -e 'Operation not permitted' <<<"$1" && ! grep -q 'rc=0' <<<"$1"; }
check "environ unreadable" denied "$environ"
check "mem unreadable" denied "$mem"
check "ptrace attach refused" denied "$ptrace"
check "fd 1 cannot be opened" denied "$fd1"
check "no canary, token or MCP_ variable" grep -qx 0 <<<"$grep_env"
fd_ok() {
  local names terminals
  names=$(grep -E '^[0-9]+ ' <<<"$fds" | awk '{print $1}' | sort -n | tr '\n' ' ')
  terminals=$(grep -E '^[0-9]+ ' <<<"$fds" | awk '{print $2}' | sort -u)
  [[ "$names" == "0 1 2 255 " || "$names" == "0 1 2 " ]] && [[ $(wc -l <<<"$terminals") -eq 1 ]] && [[ "$terminals" == /dev/pts/* ]]
}
check "only fds 0-2 and 255, all on one /dev/pts" fd_ok
echo "not run: the execute_command part (that tool is not in this build)"
stop_server
kill_rtest_processes
finish
