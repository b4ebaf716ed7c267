"""Drive a Streamable HTTP MCP endpoint with the Python `mcp` 2.x client and check what it answers.

Usage:
    http_client_mcp2.py [--timeout SECONDS] [--message TEXT] [--clients N]
                        [--mode auto|legacy] [--expect-tools N] URL

URL is a Streamable HTTP MCP endpoint (e.g. http://127.0.0.1:PORT/mcp), the server itself or a
proxy in front of it. Each of N clients (default 1), at the same time, with a session of its own:

  1. connects with `mcp.Client(URL)` (mode `auto`: it probes `server/discover` first and falls
     back to the `initialize` handshake on servers that do not speak 2026-07-28; `legacy`:
     the handshake only), and records the negotiated protocol version and server name;
  2. lists the tools and requires `echo` among them (and exactly N tools with --expect-tools);
  3. waits until every client got that far, then all call `echo` at once, client i with
     `MESSAGE #i` (just MESSAGE when N is 1), and requires the text result `Echo: <its own
     message>`: answers must not cross between sessions;
  4. leaves the client, which ends its session (HTTP DELETE).

It prints exactly one JSON object on one line to stdout and exits 0 only when every check of
every client passed; otherwise it exits 1 and names the failed checks on stderr:

    {"ok": true, "url": "...", "mode": "auto", "seconds": 1.2, "failures": [],
     "clients": [{"index": 0, "message": "...", "protocol_version": "2025-11-25",
                  "server_name": "...", "tools": ["echo", ...], "echo_text": "Echo: ...",
                  "failures": [], "error": null, "seconds": 0.8}]}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import anyio
from mcp import Client, types

EXPECTED_TOOL = "echo"


def log(line: str) -> None:
    print(f"http_client_mcp2: {line}", file=sys.stderr, flush=True)


def describe(error: BaseException) -> str:
    """Flatten exception groups into one readable line."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


class Barrier:
    """Lets every client through once all of them arrived (or gave up)."""

    def __init__(self, parties: int) -> None:
        self.waiting = parties
        self.open = anyio.Event()

    def arrive(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0:
            self.open.set()

    async def wait(self) -> None:
        self.arrive()
        await self.open.wait()


async def one_client(
    url: str,
    index: int,
    message: str,
    mode: str,
    expect_tools: int | None,
    barrier: Barrier,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "index": index,
        "message": message,
        "protocol_version": None,
        "server_name": None,
        "tools": [],
        "echo_text": None,
        "failures": [],
        "error": None,
        "seconds": None,
    }
    failures: list[str] = report["failures"]
    started = time.monotonic()
    arrived = False
    try:
        async with Client(url, mode=mode) as client:
            report["protocol_version"] = client.protocol_version
            info = client.server_info
            report["server_name"] = info.name if info is not None else None

            tools = await client.list_tools()
            report["tools"] = [tool.name for tool in tools.tools]
            if EXPECTED_TOOL not in report["tools"]:
                failures.append(f"tools/list lacks {EXPECTED_TOOL!r}")
            if expect_tools is not None and len(report["tools"]) != expect_tools:
                failures.append(f"tools/list gave {len(report['tools'])} tools, not {expect_tools}")

            arrived = True
            await barrier.wait()
            result = await client.call_tool(EXPECTED_TOOL, {"message": message})
            texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
            report["echo_text"] = texts[0] if len(texts) == 1 else texts
            if result.is_error or texts != [f"Echo: {message}"]:
                failures.append(f"echo answered {texts!r} (is_error={result.is_error})")
    except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
        report["error"] = describe(error)
        failures.append(report["error"])
    finally:
        if not arrived:
            barrier.arrive()
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


async def run(options: argparse.Namespace) -> dict[str, Any]:
    count = options.clients
    messages = [options.message if count == 1 else f"{options.message} #{i}" for i in range(count)]
    reports: list[dict[str, Any] | None] = [None] * count
    barrier = Barrier(count)
    started = time.monotonic()
    timed_out = False

    async def runner(i: int) -> None:
        reports[i] = await one_client(
            options.url, i, messages[i], options.mode, options.expect_tools, barrier
        )

    with anyio.move_on_after(options.timeout) as scope:
        async with anyio.create_task_group() as group:
            for i in range(count):
                group.start_soon(runner, i)
    timed_out = scope.cancelled_caught

    clients: list[dict[str, Any]] = []
    for i, report in enumerate(reports):
        if report is None:
            report = {"index": i, "message": messages[i], "failures": [], "error": None}
            report["error"] = f"timed out after {options.timeout:g} s"
            report["failures"].append(report["error"])
        clients.append(report)
    failures = [f"client {c['index']}: {f}" for c in clients for f in c["failures"]]
    if timed_out and not failures:
        failures.append(f"timed out after {options.timeout:g} s")
    return {
        "ok": not failures,
        "url": options.url,
        "mode": options.mode,
        "seconds": round(time.monotonic() - started, 3),
        "failures": failures,
        "clients": clients,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the Streamable HTTP MCP endpoint")
    parser.add_argument("--timeout", type=float, default=30.0, help="overall limit in seconds")
    parser.add_argument("--message", default="hello through shadowcat", help="text to echo")
    parser.add_argument("--clients", type=int, default=1, help="concurrent clients (sessions)")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="auto")
    parser.add_argument("--expect-tools", type=int, default=None, help="exact number of tools")
    options = parser.parse_args()
    if options.clients < 1:
        parser.error("--clients must be at least 1")

    report = anyio.run(run, options)
    print(json.dumps(report), flush=True)
    for client in report["clients"]:
        log(
            f"client {client['index']}: {client.get('protocol_version')} "
            f"{len(client.get('tools') or [])} tools, echo {client.get('echo_text')!r}"
        )
    if report["ok"]:
        return 0
    log("FAILED: " + "; ".join(report["failures"]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
