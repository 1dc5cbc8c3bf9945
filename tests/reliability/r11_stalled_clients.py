"""R11: clients that stop reading. Standard library only.

Starts the server over HTTP with a `yes` session S and an idle shell B. A stalled
client opens 20 POSTs at t = 0 s and 20 more at t = 75 s, each a 1 MB read of S on its
own socket with a 4 KiB receive buffer, and never reads them. A healthy client samples
latencies, S's cursor, the server's RSS and which stalled sockets are still open.
Prints the figures and a verdict; exits 1 on failure.

Usage: python3 tests/reliability/r11_stalled_clients.py BIN [PORT] [SECONDS]
(SECONDS scales the 180 s schedule down for a quick trial run.)
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "./target/release/mcp-terminal-server"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 18081
TOTAL = float(sys.argv[3]) if len(sys.argv) > 3 else 180.0
SCALE = TOTAL / 180.0
PROTO = "2025-06-18"
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": PROTO,
}


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def post(body, session=None, timeout=30.0):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    headers = dict(HEADERS)
    if session:
        headers["Mcp-Session-Id"] = session
    connection.request("POST", "/mcp", json.dumps(body), headers)
    response = connection.getresponse()
    data = response.read().decode()
    session_id = response.getheader("mcp-session-id")
    connection.close()
    for line in data.splitlines():
        if line.startswith("data: "):
            line = line[6:]
        if line.startswith("{"):
            return json.loads(line), session_id
    return None, session_id


def initialise():
    _, session = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PROTO, "capabilities": {}, "clientInfo": {"name": "r11", "version": "0"}}})
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    return session


def call(session, tool, arguments):
    started = time.monotonic()
    message, _ = post({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}}, session)
    return message["result"], time.monotonic() - started


def tools_list_p99(session):
    times = []
    for _ in range(100):
        started = time.monotonic()
        post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, session)
        times.append(time.monotonic() - started)
    return sorted(times)[98]


def stalled_batch(session, target):
    """Sends 20 reads of `target` on sockets that are never read; returns them."""
    sockets = []
    for index in range(20):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", PORT))
        body = json.dumps({"jsonrpc": "2.0", "id": 100 + index, "method": "tools/call",
                           "params": {"name": "session_read", "_meta": {"progressToken": index},
                                      "arguments": {"session_id": target, "view": "output",
                                                    "max_chars": 1000000, "timeout": 5}}})
        request = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
                   + f"Mcp-Session-Id: {session}\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        sock.sendall(request.encode())
        sockets.append(sock)
    return sockets


def established(ports):
    """Local ports among `ports` whose client socket is still ESTABLISHED."""
    output = subprocess.run(["ss", "-tnH", "state", "established", f"( dport = :{PORT} )"],
                            capture_output=True, text=True).stdout
    open_ports = {int(line.split()[2].rsplit(":", 1)[1]) for line in output.splitlines() if line.strip()}
    return [port for port in ports if port in open_ports]


def main():
    workdir = tempfile.mkdtemp()
    stderr = open(os.path.join(workdir, "server.err"), "w")
    server = subprocess.Popen([BIN, "--http", "--host", "127.0.0.1", "--port", str(PORT)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    failures = []
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        healthy = initialise()
        flood = call(healthy, "session_open", {"argv": ["yes"]})[0]["structuredContent"]["session_id"]
        idle = call(healthy, "session_open", {})[0]["structuredContent"]["session_id"]
        start_rss, start_fds = status_kib(server.pid, "VmRSS:"), fd_count(server.pid)
        stalled = initialise()
        t0 = time.monotonic()
        batches = [(0.0, None), (75.0 * SCALE, None)]
        open_sockets = []
        ports_by_batch = []
        samples = []
        p99s = []
        next_sample, next_p99 = 0.0, 30.0 * SCALE
        last_cursor = None
        while time.monotonic() - t0 < 150.0 * SCALE:
            now = time.monotonic() - t0
            for index, (at, sent) in enumerate(batches):
                if sent is None and now >= at:
                    sockets = stalled_batch(stalled, flood)
                    open_sockets += sockets
                    ports_by_batch.append((at, [s.getsockname()[1] for s in sockets]))
                    batches[index] = (at, now)
            if now >= next_p99:
                p99s.append(tools_list_p99(healthy))
                next_p99 += 30.0 * SCALE
            if now >= next_sample:
                _, idle_latency = call(healthy, "session_read", {"session_id": idle, "view": "screen"})
                result, _ = call(healthy, "session_read", {"session_id": flood, "max_chars": 100})
                cursor = float(result["structuredContent"]["cursor"].split(".")[0])
                rss = status_kib(server.pid, "VmRSS:")
                still_open = [len(established(ports)) for _, ports in ports_by_batch]
                samples.append((round(now, 1), round(idle_latency * 1000), cursor, rss, still_open))
                if last_cursor is not None and cursor <= last_cursor:
                    failures.append(f"cursor of S did not grow at t={now:.0f}s")
                last_cursor = cursor
                next_sample += 5.0 * SCALE
            time.sleep(0.2)
        for sock in open_sockets:
            sock.close()
        while time.monotonic() - t0 < 180.0 * SCALE:
            time.sleep(0.5)
        end_rss, end_fds = status_kib(server.pid, "VmRSS:"), fd_count(server.pid)
        final, _ = call(healthy, "session_read", {"session_id": flood, "max_chars": 100})

        print("t_s  idle_read_ms  S_cursor_row  rss_kib  stalled_sockets_open_per_batch")
        for sample in samples:
            print(*sample)
        print("tools/list p99 (ms):", [round(p * 1000) for p in p99s])
        print(f"start rss {start_rss} KiB, fds {start_fds}; end rss {end_rss} KiB, fds {end_fds}")
        if any(p >= 0.5 for p in p99s):
            failures.append("tools/list p99 >= 500 ms")
        if any(sample[1] >= 300 for sample in samples):
            failures.append("a read of B took >= 300 ms")
        if max(sample[3] for sample in samples) - start_rss > 64 * 1024:
            failures.append("rss exceeded start + 64 MiB")
        for at, ports in ports_by_batch:
            due = at + 5.0 + 60.0 * SCALE
            late = [s for s in samples if s[0] >= due and s[4][ports_by_batch.index((at, ports))] > 0]
            if late:
                failures.append(f"stalled sockets of the batch at t={at:.0f}s open after t={due:.0f}s")
        if abs(end_fds - start_fds) > 5:
            failures.append(f"fds {start_fds} -> {end_fds}")
        if end_rss - start_rss > 8 * 1024:
            failures.append(f"rss {start_rss} -> {end_rss} KiB")
        if final.get("isError"):
            failures.append("S is not readable at the end")
    finally:
        server.terminate()
        server.wait(timeout=20)
    print("R11:", "PASS" if not failures else "FAIL: " + "; ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
