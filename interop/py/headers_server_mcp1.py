"""A Streamable HTTP MCP server (Python `mcp` 1.x, FastMCP) that remembers the
`Authorization` header of every HTTP request it receives: the upstream of the gateway's
security tests, which must see the gateway's own credentials and never the client's token.

Usage:
    headers_server_mcp1.py PORT

Tools: `echo(message)` -> "Echo: message"; `seen_authorization()` -> a JSON list of every
`Authorization` header received so far (`null` for a request without one), in order;
`delete_everything()` -> "deleted" (a tool a policy can deny).
It writes `listening on http://127.0.0.1:PORT/mcp` to stderr once it accepts connections.
"""

from __future__ import annotations

import json
import sys

import uvicorn
from mcp.server.fastmcp import FastMCP

SEEN: list[str | None] = []

port = int(sys.argv[1])
server = FastMCP("headers-upstream", host="127.0.0.1", port=port, log_level="WARNING")


@server.tool()
def echo(message: str) -> str:
    """Echoes the message back."""
    return f"Echo: {message}"


@server.tool()
def seen_authorization() -> str:
    """Every Authorization header this server received, in order."""
    return json.dumps(SEEN)


@server.tool()
def delete_everything() -> str:
    """A dangerous tool."""
    return "deleted"


class RememberAuthorization:
    """ASGI middleware: notes each HTTP request's Authorization header."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            value = None
            for name, raw in scope.get("headers", []):
                if name.lower() == b"authorization":
                    value = raw.decode("latin-1")
            SEEN.append(value)
        await self.app(scope, receive, send)


class Announce(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets)
        print(f"listening on http://127.0.0.1:{port}/mcp", file=sys.stderr, flush=True)


app = RememberAuthorization(server.streamable_http_app())
Announce(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).run()
