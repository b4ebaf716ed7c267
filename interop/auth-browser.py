"""A stand-in for a browser that approves an authorization without a user.

Usage:
    auth-browser.py URL

GETs URL and follows its redirects (the authorization server's redirect to Shadowcat's
loopback receiver among them), as `shadowcat forward stdio --oauth-authorize browser
--oauth-browser "python auth-browser.py"` runs it. Exits 0 when the last answer was 2xx.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=20) as answer:
            answer.read()
            return 0 if 200 <= answer.status < 300 else 1
    except (urllib.error.URLError, OSError) as e:
        print(f"auth-browser: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
