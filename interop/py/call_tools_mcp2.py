"""Call tools on an MCP server with the Python `mcp` 2.x client and report what came back.

Usage:
    call_tools_mcp2.py [--timeout SECONDS] [--call-timeout SECONDS] [--mode auto|legacy]
                       [--parallel] --call TOOL[=JSON_ARGUMENTS] [--call ...]
                       (URL | -- COMMAND [ARG ...])

The server is a Streamable HTTP endpoint (URL) or a stdio command launched by the client
(after `--`; the whole environment is passed on). The script connects, then makes each
`--call` in order (with `--parallel`: all at once), each bounded by `--call-timeout`, and
records for every call what the client observed: the tool result (its `isError` and text
contents) or the error the client raised (a JSON-RPC error's code and message, a timeout, a
transport failure). One call failing does not stop the others.

It prints exactly one JSON object on one line to stdout:

    {"connected": true, "protocol_version": "2025-11-25", "server_name": "...",
     "calls": [{"tool": "echo", "arguments": {...}, "started": 0.41, "ended": 0.43,
                "seconds": 0.02, "is_error": false, "texts": ["Echo: hi"],
                "result": {...}, "error": null}],
     "notifications": [...], "transport_errors": [...], "error": null, "seconds": 0.9}

`error` of a call is null or {"kind": "jsonrpc" | "timeout" | "other", "code", "message"};
`started`/`ended` are seconds from the script's start. The exit status is 0 when the client
connected and every call got an answer (a result or a JSON-RPC error), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters, types

STARTED = time.monotonic()


def now() -> float:
    return round(time.monotonic() - STARTED, 4)


def describe(error: BaseException) -> str:
    """Flatten exception groups into one readable line."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    tool, _, arguments = text.partition("=")
    return tool, (json.loads(arguments) if arguments else {})


async def one_call(
    client: Client, tool: str, arguments: dict[str, Any], call_timeout: float
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "tool": tool,
        "arguments": arguments,
        "started": now(),
        "ended": None,
        "seconds": None,
        "is_error": None,
        "texts": [],
        "result": None,
        "error": None,
    }
    try:
        with anyio.fail_after(call_timeout):
            result = await client.call_tool(tool, arguments, read_timeout_seconds=call_timeout)
        record["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        record["is_error"] = bool(result.is_error)
        record["texts"] = [c.text for c in result.content if isinstance(c, types.TextContent)]
    except MCPError as error:
        kind = "timeout" if "timed out" in error.message.lower() else "jsonrpc"
        record["error"] = {"kind": kind, "code": error.code, "message": error.message}
    except TimeoutError:
        record["error"] = {"kind": "timeout", "code": None, "message": f"no answer in {call_timeout:g} s"}
    except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
        record["error"] = {"kind": "other", "code": None, "message": describe(error)}
    record["ended"] = now()
    record["seconds"] = round(record["ended"] - record["started"], 4)
    return record


async def run(options: argparse.Namespace, server: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "connected": False,
        "protocol_version": None,
        "server_name": None,
        "calls": [],
        "notifications": [],
        "transport_errors": [],
        "error": None,
        "seconds": None,
    }
    calls = [parse_call(c) for c in options.call]

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            report["transport_errors"].append(describe(message))
        else:
            inner = getattr(message, "root", message)
            report["notifications"].append(getattr(inner, "method", None) or str(inner))

    try:
        with anyio.fail_after(options.timeout):
            async with Client(server, mode=options.mode, message_handler=on_message) as client:
                report["connected"] = True
                report["protocol_version"] = client.protocol_version
                info = client.server_info
                report["server_name"] = info.name if info is not None else None
                if options.parallel:
                    records: list[dict[str, Any] | None] = [None] * len(calls)

                    async def runner(i: int) -> None:
                        records[i] = await one_call(client, calls[i][0], calls[i][1], options.call_timeout)

                    async with anyio.create_task_group() as group:
                        for i in range(len(calls)):
                            group.start_soon(runner, i)
                    report["calls"] = records
                else:
                    for tool, arguments in calls:
                        report["calls"].append(await one_call(client, tool, arguments, options.call_timeout))
    except BaseException as error:  # noqa: BLE001 - every failure is reported, not raised
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        report["error"] = describe(error)
        if isinstance(error, TimeoutError):
            report["error"] = f"timed out after {options.timeout:g} s"
    report["seconds"] = now()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=30.0, help="overall limit in seconds")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="limit per call")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="legacy")
    parser.add_argument("--parallel", action="store_true", help="make all calls at once")
    parser.add_argument("--call", action="append", default=[], help="TOOL or TOOL=JSON")
    parser.add_argument("server", nargs=argparse.REMAINDER, help="URL, or -- COMMAND [ARG ...]")
    options = parser.parse_args()
    target = options.server[1:] if options.server[:1] == ["--"] else options.server
    if not target:
        parser.error("missing the server: a URL, or -- COMMAND [ARG ...]")
    if target[0].startswith(("http://", "https://")) and len(target) == 1:
        server: Any = target[0]
    else:
        server = StdioServerParameters(command=target[0], args=target[1:], env=dict(os.environ))

    report = anyio.run(run, options, server)
    print(json.dumps(report), flush=True)
    answered = all(c is not None and (c["error"] is None or c["error"]["kind"] == "jsonrpc") for c in report["calls"])
    return 0 if report["connected"] and report["error"] is None and answered else 1


if __name__ == "__main__":
    sys.exit(main())
