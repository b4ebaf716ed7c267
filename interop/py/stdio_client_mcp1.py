"""Drive a stdio MCP server with the Python `mcp` 1.x client and check what it answers.

Usage:
    stdio_client_mcp1.py [--timeout SECONDS] [--message TEXT] -- COMMAND [ARG ...]

COMMAND is launched as a stdio MCP server (directly, or behind a proxy such as
`shadowcat forward stdio -- ...`). The script then:

  1. initializes the session (records the negotiated protocol version and server name);
  2. lists the tools and requires `echo` among them;
  3. calls `echo` with MESSAGE and requires the text result `Echo: MESSAGE`;
  4. requires a `notifications/tools/list_changed` notification from the server
     (the reference "everything" server sends one once the session is initialized);
  5. answers the server's `roots/list` request and requires the server's logging
     notification that acknowledges the answer (a server-to-client request and its
     response travelling through whatever sits in between);
  6. requires that every line the server wrote to stdout was a valid JSON-RPC message.

It prints exactly one JSON object on one line to stdout and exits 0 only when every
check passed; otherwise it exits 1 and names the failed checks on stderr. The server's
stderr is passed through to this script's stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.context import RequestContext
from mcp.shared.session import RequestResponder

EXPECTED_TOOL = "echo"
ROOT_URI = "file:///tmp/shadowcat-interop-root"
ROOTS_ACK_PREFIX = "Roots updated"
# How long to wait, after the echo call, for notifications that have not arrived yet.
NOTIFICATION_WAIT = 10.0


class Observed:
    """What the server sent outside of request/response pairs."""

    def __init__(self) -> None:
        self.notifications: list[str] = []
        self.invalid_messages: list[str] = []
        self.server_requests: list[str] = []
        self.tool_list_changed = anyio.Event()
        self.roots_requested = False
        self.roots_acknowledged = anyio.Event()

    async def on_message(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult]
        | types.ServerNotification
        | Exception,
    ) -> None:
        if isinstance(message, Exception):
            # stdio_client hands over anything on the server's stdout that is not a
            # JSON-RPC message as an exception.
            first_line = str(message).splitlines()[0] if str(message) else repr(message)
            self.invalid_messages.append(f"{type(message).__name__}: {first_line}")
        elif isinstance(message, types.ServerNotification):
            method = message.root.method
            self.notifications.append(method)
            if method == "notifications/tools/list_changed":
                self.tool_list_changed.set()
        else:
            self.server_requests.append(message.request.root.method)
        await anyio.lowlevel.checkpoint()

    async def on_logging(self, params: types.LoggingMessageNotificationParams) -> None:
        if isinstance(params.data, str) and params.data.startswith(ROOTS_ACK_PREFIX):
            self.roots_acknowledged.set()

    async def on_list_roots(
        self, context: RequestContext[ClientSession, Any]
    ) -> types.ListRootsResult:
        self.roots_requested = True
        self.server_requests.append("roots/list")
        return types.ListRootsResult(roots=[types.Root(uri=ROOT_URI, name="interop")])


def log(line: str) -> None:
    print(f"stdio_client_mcp1: {line}", file=sys.stderr, flush=True)


def describe(error: BaseException) -> str:
    """Flatten exception groups into one readable line."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


async def run(command: str, args: list[str], message: str, timeout: float) -> dict[str, Any]:
    report: dict[str, Any] = {
        "ok": False,
        "protocol_version": None,
        "server_name": None,
        "tools": [],
        "echo_text": None,
        "tool_list_changed": False,
        "roots_requested": False,
        "roots_acknowledged": False,
        "notifications": [],
        "server_requests": [],
        "invalid_messages": [],
        "failures": [],
        "error": None,
        "shutdown_seconds": None,
    }
    failures: list[str] = report["failures"]
    observed = Observed()
    # Pass the whole environment on (stdio_client otherwise keeps only a few variables),
    # so that settings such as RUST_LOG reach a proxy in between.
    params = StdioServerParameters(command=command, args=args, env=dict(os.environ))
    started = time.monotonic()
    deadline = started + timeout

    try:
        with anyio.fail_after(timeout):
            async with stdio_client(params) as (read, write):
                async with ClientSession(
                    read,
                    write,
                    message_handler=observed.on_message,
                    logging_callback=observed.on_logging,
                    list_roots_callback=observed.on_list_roots,
                ) as session:
                    init = await session.initialize()
                    report["protocol_version"] = init.protocolVersion
                    report["server_name"] = init.serverInfo.name
                    log(f"initialized: {init.protocolVersion}, server {init.serverInfo.name!r}")

                    tools = await session.list_tools()
                    report["tools"] = [tool.name for tool in tools.tools]
                    log(f"tools/list: {len(report['tools'])} tools")
                    if EXPECTED_TOOL not in report["tools"]:
                        failures.append(f"tools/list lacks {EXPECTED_TOOL!r}")

                    result = await session.call_tool(EXPECTED_TOOL, {"message": message})
                    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
                    report["echo_text"] = texts[0] if len(texts) == 1 else texts
                    log(f"tools/call echo: {report['echo_text']!r}")
                    if result.isError or texts != [f"Echo: {message}"]:
                        failures.append(f"echo answered {texts!r} (isError={result.isError})")

                    # The notification and the roots exchange may still be in flight.
                    left = deadline - time.monotonic() - 1.0
                    with anyio.move_on_after(max(min(left, NOTIFICATION_WAIT), 0.1)):
                        await observed.tool_list_changed.wait()
                        await observed.roots_acknowledged.wait()
                closing = time.monotonic()
            # Leaving stdio_client closed the server's stdin and waited for it to exit
            # (it is terminated when it has not exited within 2 s).
            report["shutdown_seconds"] = round(time.monotonic() - closing, 3)
    except BaseException as error:  # noqa: BLE001 - every failure is reported, not raised
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        report["error"] = describe(error)
        if isinstance(error, TimeoutError):
            report["error"] = f"timed out after {timeout:g} s"
        failures.append(report["error"])

    report["tool_list_changed"] = observed.tool_list_changed.is_set()
    report["roots_requested"] = observed.roots_requested
    report["roots_acknowledged"] = observed.roots_acknowledged.is_set()
    report["notifications"] = observed.notifications
    report["server_requests"] = observed.server_requests
    report["invalid_messages"] = observed.invalid_messages
    report["seconds"] = round(time.monotonic() - started, 3)

    if report["error"] is None:
        if not report["tool_list_changed"]:
            failures.append("no notifications/tools/list_changed received")
        if not report["roots_requested"]:
            failures.append("the server never sent roots/list")
        elif not report["roots_acknowledged"]:
            failures.append("the server never acknowledged the roots/list answer")
    if observed.invalid_messages:
        failures.append(f"{len(observed.invalid_messages)} invalid line(s) on the server's stdout")
    report["ok"] = not failures
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=30.0, help="overall limit in seconds")
    parser.add_argument("--message", default="hello through shadowcat", help="text to echo")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("missing the server command (after --)")

    report = anyio.run(run, command[0], command[1:], options.message, options.timeout)
    print(json.dumps(report), flush=True)
    if report["ok"]:
        return 0
    log("FAILED: " + "; ".join(report["failures"]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
