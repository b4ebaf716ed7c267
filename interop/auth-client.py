"""The client under test of the conformance suite's OAuth client scenarios.

Usage (as `conformance client --command "…" --scenario auth/NAME` runs it, the server URL last):
    auth-client.py [--shadowcat BIN] [--timeout SECONDS] [--store FILE] [--browser CMD]
                   [--report FILE] URL

A real MCP client (the Python `mcp` 1.x stdio client) launches
`shadowcat forward stdio --to URL --oauth --oauth-authorize fetch …`, so the OAuth client under
test is Shadowcat's: the Python client knows nothing of OAuth. The script initializes, lists the
tools and calls each tool whose name starts with `test` (the scenarios' servers offer
`test-tool`; calling it is what needs a stepped-up scope in `auth/scope-step-up`).

The scenario's context (`MCP_CONFORMANCE_CONTEXT`, JSON) becomes Shadowcat options:
`client_id` / `client_secret` a pre-registered client, `private_key_pem` a client key
(`private_key_jwt`), `idp_id_token` and `idp_token_endpoint` the identity assertion grant; a
scenario named `…client-credentials…` uses the client credentials grant. Every run offers the
client id metadata document URL `https://conformance-test.local/client-metadata.json`, which
Shadowcat uses only where the authorization server supports such documents.

With --browser CMD, Shadowcat opens the authorization URL by running CMD with the URL as its
last argument (`--oauth-authorize browser`) instead of fetching it itself. Tokens go to a fresh
temporary store (or --store FILE). It prints one JSON object on stdout
(`ok`, `url`, `scenario`, `shadowcat_args` without secrets, `tools`, `calls`, `error`; also to
--report FILE) and exits
0 only when the session worked. Shadowcat's stderr is passed through to this script's stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
SECRET_OPTIONS = {"--oauth-client-secret", "--oauth-id-token", "--oauth-idp-client-secret"}


def shadowcat_args(url: str, scenario: str, context: dict[str, Any], store: str, scratch: str) -> list[str]:
    args = [
        "forward", "stdio", "--to", url,
        "--oauth", "--oauth-authorize", "fetch", "--oauth-timeout", "20",
        "--oauth-token-store", store,
        "--oauth-client-metadata-url", CLIENT_METADATA_URL,
    ]
    if context.get("client_id"):
        args += ["--oauth-client-id", str(context["client_id"])]
    if context.get("client_secret"):
        args += ["--oauth-client-secret", str(context["client_secret"])]
    if context.get("private_key_pem"):
        key = Path(scratch) / "client-key.pem"
        key.write_text(str(context["private_key_pem"]))
        key.chmod(0o600)
        args += ["--oauth-client-key", str(key)]
        args += ["--oauth-client-key-alg", str(context.get("signing_algorithm") or "ES256")]
    if context.get("idp_id_token") and context.get("idp_token_endpoint"):
        args += ["--oauth-grant", "identity-assertion"]
        args += ["--oauth-id-token", str(context["idp_id_token"])]
        args += ["--oauth-idp-token-endpoint", str(context["idp_token_endpoint"])]
        if context.get("idp_client_id"):
            args += ["--oauth-idp-client-id", str(context["idp_client_id"])]
    elif "client-credentials" in scenario:
        args += ["--oauth-grant", "client-credentials"]
    return args


def redacted(args: list[str]) -> list[str]:
    return ["…" if i > 0 and args[i - 1] in SECRET_OPTIONS else a for i, a in enumerate(args)]


async def run(binary: str, args: list[str], report: dict[str, Any]) -> None:
    env = dict(os.environ)
    params = StdioServerParameters(command=binary, args=args, env=env)
    async with stdio_client(params, errlog=sys.stderr) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = [t.name for t in tools.tools]
            for name in report["tools"]:
                if not name.startswith("test"):
                    continue
                result = await session.call_tool(name, {})
                texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
                report["calls"].append({"tool": name, "is_error": bool(result.isError), "texts": texts})
                if result.isError:
                    raise RuntimeError(f"{name} answered with an error: {texts}")


def leaves(error: BaseException) -> list[BaseException]:
    """The innermost exceptions of (nested) exception groups."""
    inner = getattr(error, "exceptions", None)
    if not inner:
        return [error]
    return [leaf for e in inner for leaf in leaves(e)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shadowcat", default=os.environ.get("SHADOWCAT_BIN", "shadowcat"))
    parser.add_argument("--timeout", type=float, default=25.0)
    parser.add_argument("--store", help="the token store file (default: a fresh temporary one)")
    parser.add_argument(
        "--browser",
        help="open the authorization URL with this command (--oauth-authorize browser) instead of fetching it",
    )
    parser.add_argument("--report", help="also write the JSON report to this file")
    parser.add_argument("url")
    options = parser.parse_args()
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    try:
        context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    except json.JSONDecodeError as e:
        context = {}
        print(f"auth-client: MCP_CONFORMANCE_CONTEXT is not JSON: {e}", file=sys.stderr)
    report: dict[str, Any] = {
        "ok": False, "url": options.url, "scenario": scenario, "tools": [], "calls": [], "error": None,
    }
    with tempfile.TemporaryDirectory(prefix="shadowcat-auth-client-") as scratch:
        store = options.store or str(Path(scratch) / "tokens.json")
        args = shadowcat_args(options.url, scenario, context, store, scratch)
        if options.browser:
            at = args.index("fetch")
            args[at : at + 1] = ["browser", "--oauth-browser", options.browser]
        report["shadowcat_args"] = redacted(args)

        async def bounded() -> None:
            with anyio.fail_after(options.timeout):
                await run(options.shadowcat, args, report)

        try:
            anyio.run(bounded)
            report["ok"] = True
        except BaseException as e:  # noqa: BLE001 - every failure is reported, then exit 1
            if isinstance(e, KeyboardInterrupt):
                raise
            report["error"] = "; ".join(f"{type(x).__name__}: {x}" for x in leaves(e))
    print(json.dumps(report), flush=True)
    if options.report:
        Path(options.report).write_text(json.dumps(report))
    if not report["ok"]:
        print(f"auth-client: {report['error']}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
