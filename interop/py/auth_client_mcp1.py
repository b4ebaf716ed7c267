"""Drive a Streamable HTTP MCP endpoint with the Python `mcp` 1.x client, with a bearer token.

Usage:
    auth_client_mcp1.py URL TOKEN CALL...

Each CALL is `TOOL` or `TOOL:MESSAGE` (the `message` argument). The client initializes,
lists the tools, then calls each tool in order. It prints one JSON object to stdout:

    {"ok": true, "tools": ["echo", ...], "calls": [{"tool": "echo", "text": "Echo: hi",
     "is_error": false, "error": null}, ...], "error": null}

A call refused with a JSON-RPC error is recorded with its `error` (code and message) and the
client goes on; a failure of the session itself ends the run with "ok": false.
"""

from __future__ import annotations

import json
import sys

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


def describe(error: BaseException) -> str:
    """Flatten exception groups into one readable line."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


async def main(url: str, token: str, calls: list[str]) -> dict:
    out: dict = {"ok": False, "tools": [], "calls": [], "error": None}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with streamablehttp_client(url, headers=headers) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                out["tools"] = [t.name for t in tools.tools]
                for call in calls:
                    tool, _, message = call.partition(":")
                    args = {"message": message} if message else {}
                    entry = {"tool": tool, "text": None, "is_error": False, "error": None}
                    try:
                        result = await session.call_tool(tool, args)
                        entry["is_error"] = bool(result.isError)
                        entry["text"] = "".join(
                            c.text for c in result.content if getattr(c, "text", None)
                        )
                    except McpError as e:
                        entry["error"] = {"code": e.error.code, "message": e.error.message}
                    out["calls"].append(entry)
        out["ok"] = True
    except BaseException as e:  # noqa: BLE001 - the report names whatever ended the run
        out["error"] = describe(e)
    return out


if __name__ == "__main__":
    result = anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3:])
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)
