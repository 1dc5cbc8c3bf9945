"""Opens a terminal session on a running server over MCP streamable HTTP and prints a
JSON summary, with only the standard library: the recipes are tested where no MCP SDK
is installed.

Usage: mcp_call.py PORT COMMAND
Runs COMMAND in a new session, waits for its output to settle, and prints
{"session_id": ..., "pid": ..., "text": ...} on one line. The session is left open.
"""

import json
import sys
import urllib.request

PROTOCOL_VERSION = "2025-06-18"


def post(url, message, session_id=None):
    """Sends one JSON-RPC message and returns (response headers, decoded result or None)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL_VERSION,
    }
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    request = urllib.request.Request(url, json.dumps(message).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read().decode()
        if "id" not in message:
            return response.headers, None
        if response.headers.get("Content-Type", "").startswith("text/event-stream"):
            for line in body.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    event = json.loads(line[5:])
                    if event.get("id") == message["id"]:
                        return response.headers, event
            raise RuntimeError(f"no response with id {message['id']} in the event stream: {body!r}")
        return response.headers, json.loads(body)


def main():
    port, command = sys.argv[1], sys.argv[2]
    url = f"http://127.0.0.1:{port}/mcp"
    headers, _ = post(url, {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "deploy-test", "version": "1"},
        },
    })
    session_id = headers["Mcp-Session-Id"]
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session_id)
    _, reply = post(url, {
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "session_open", "arguments": {"command": command}},
    }, session_id)
    opened = reply["result"]["structuredContent"]
    _, reply = post(url, {
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {
            "name": "session_read",
            "arguments": {"session_id": opened["session_id"], "settle": 0.5, "timeout": 10},
        },
    }, session_id)
    read = reply["result"]["structuredContent"]
    print(json.dumps({"session_id": opened["session_id"], "pid": opened.get("pid"), "text": read["text"]}))


if __name__ == "__main__":
    main()
