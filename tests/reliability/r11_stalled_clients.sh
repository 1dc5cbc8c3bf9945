#!/usr/bin/env bash
# R11: clients that stop reading (about 3 minutes). Usage, from the repository root:
# tests/reliability/r11_stalled_clients.sh [BIN]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-./target/release/mcp-terminal-server}
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit: $(git rev-parse --short HEAD), kernel: $(uname -r), CPUs: $(nproc), user: $(id -un)"
exec timeout 300 python3 tests/reliability/r11_stalled_clients.py "$BIN" "${PORT:-18081}"
