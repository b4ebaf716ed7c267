"""Drive a Streamable HTTP MCP endpoint with the Python `mcp` 1.x client and check what it answers.

Usage:
    http_client_mcp1.py [--timeout SECONDS] [--message TEXT] URL

URL is a Streamable HTTP MCP endpoint (e.g. http://127.0.0.1:PORT/mcp), the server itself or a
proxy in front of it. With `streamablehttp_client` and `ClientSession` the script:

  1. initializes the session (records the negotiated protocol version, the server name and
     the `Mcp-Session-Id` it was given, which must be present);
  2. lists the tools and requires `echo` among them;
  3. calls `echo` with MESSAGE and requires the text result `Echo: MESSAGE`;
  4. answers the server's `roots/list` request (which the reference "everything" server sends
     on the standalone GET stream 350 ms after `notifications/initialized`) and requires the
     server's logging notification that acknowledges the answer: a server-to-client request
     and its response (POSTed back) travelling through whatever sits in between;
  5. leaves, ending the session with DELETE.

`notifications/tools/list_changed` is recorded but not required: over Streamable HTTP the
"everything" server sends it before any GET stream can be open, and it is lost.

It prints exactly one JSON object on one line to stdout and exits 0 only when every check
passed; otherwise it exits 1 and names the failed checks on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import anyio
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client

# The same observer as the stdio client: notifications, server requests, the roots exchange.
from stdio_client_mcp1 import EXPECTED_TOOL, NOTIFICATION_WAIT, Observed, describe


def log(line: str) -> None:
    print(f"http_client_mcp1: {line}", file=sys.stderr, flush=True)


async def run(url: str, message: str, timeout: float) -> dict[str, Any]:
    report: dict[str, Any] = {
        "ok": False,
        "url": url,
        "protocol_version": None,
        "server_name": None,
        "session_id": None,
        "tools": [],
        "echo_text": None,
        "tool_list_changed": False,
        "roots_requested": False,
        "roots_acknowledged": False,
        "notifications": [],
        "server_requests": [],
        "failures": [],
        "error": None,
    }
    failures: list[str] = report["failures"]
    observed = Observed()
    started = time.monotonic()
    deadline = started + timeout

    try:
        with anyio.fail_after(timeout):
            async with streamablehttp_client(url) as (read, write, get_session_id):
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
                    report["session_id"] = get_session_id()
                    log(f"initialized: {init.protocolVersion}, session {report['session_id']}")
                    if not report["session_id"]:
                        failures.append("initialize gave no Mcp-Session-Id")

                    tools = await session.list_tools()
                    report["tools"] = [tool.name for tool in tools.tools]
                    if EXPECTED_TOOL not in report["tools"]:
                        failures.append(f"tools/list lacks {EXPECTED_TOOL!r}")

                    result = await session.call_tool(EXPECTED_TOOL, {"message": message})
                    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
                    report["echo_text"] = texts[0] if len(texts) == 1 else texts
                    if result.isError or texts != [f"Echo: {message}"]:
                        failures.append(f"echo answered {texts!r} (isError={result.isError})")

                    # The roots exchange may still be in flight.
                    left = deadline - time.monotonic() - 1.0
                    with anyio.move_on_after(max(min(left, NOTIFICATION_WAIT), 0.1)):
                        await observed.roots_acknowledged.wait()
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
    report["seconds"] = round(time.monotonic() - started, 3)
    if report["error"] is None:
        if not report["roots_requested"]:
            failures.append("the server never sent roots/list")
        elif not report["roots_acknowledged"]:
            failures.append("the server never acknowledged the roots/list answer")
    if observed.invalid_messages:
        failures.append(f"invalid messages: {observed.invalid_messages}")
    report["ok"] = not failures
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the Streamable HTTP MCP endpoint")
    parser.add_argument("--timeout", type=float, default=30.0, help="overall limit in seconds")
    parser.add_argument("--message", default="hello through shadowcat", help="text to echo")
    options = parser.parse_args()

    report = anyio.run(run, options.url, options.message, options.timeout)
    print(json.dumps(report), flush=True)
    if report["ok"]:
        return 0
    log("FAILED: " + "; ".join(report["failures"]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
