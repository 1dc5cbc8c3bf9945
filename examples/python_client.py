"""Drive mcp-terminal-server from Python with the official MCP SDK (mcp==2.3.0).

Opens a shell session, types a command, reads the screen and closes the session, over
stdio (the script starts the server) or over streamable HTTP (the server already runs):

    python examples/python_client.py --stdio target/release/mcp-terminal-server
    python examples/python_client.py --url http://127.0.0.1:8080/mcp

--mode legacy uses the initialize handshake; --mode auto (the default) lets the SDK
pick, which is the stateless 2026-07-28 revision with this server. A bearer token, when
the server requires one, is read from MCP_AUTH_TOKEN. Exits with status 1 on any
unexpected result.
"""

import argparse
import asyncio
import os
import sys

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

MARKER = "hello-from-python"


def target(args: argparse.Namespace):
    """Return the server to connect to, in a form that `Client` accepts."""
    if args.stdio:
        return StdioServerParameters(command=args.stdio, args=[], env={"RUST_LOG": "warn"})
    token = os.environ.get("MCP_AUTH_TOKEN")
    if not token:
        return args.url
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    return streamable_http_client(args.url, http_client=client)


async def call(client: Client, tool: str, arguments: dict) -> dict:
    """Call a tool that must succeed and return its structured content."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")
    return result.structured_content


async def run(args: argparse.Namespace) -> None:
    async with Client(target(args), mode=args.mode) as client:
        opened = await call(
            client,
            "session_open",
            {"argv": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}, "cols": 80, "rows": 24},
        )
        session_id = opened["session_id"]
        # The quotes keep the marker out of the echoed command line, so only the output matches.
        written = await call(
            client,
            "session_write",
            {"session_id": session_id, "input": "echo hello-from-''python", "submit": True, "settle": 0.3},
        )
        screen = await call(client, "session_read", {"session_id": session_id, "view": "screen"})
        closed = await call(client, "session_close", {"session_id": session_id})
        if MARKER not in written["text"] or MARKER not in screen["text"]:
            raise RuntimeError(f"marker missing: write={written['text']!r} screen={screen['text']!r}")
        print(
            f"protocol {client.protocol_version}: opened {session_id}, "
            f"read {MARKER!r}, closed: {closed}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stdio", metavar="BINARY", help="start this server binary over stdio")
    where.add_argument("--url", help="connect to this streamable HTTP endpoint")
    parser.add_argument("--mode", choices=["legacy", "auto"], default="auto")
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except Exception as error:  # noqa: BLE001 - report any failure as the exit status
        print(f"error: {error!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
