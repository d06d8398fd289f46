#!/usr/bin/env python3
"""Container health check: GET http://127.0.0.1:$ECP_HTTP_PORT/healthz (or the path given as
argument, e.g. /readyz). Exit status 0 on a 2xx answer, 1 otherwise. Standard library only."""

import os
import sys
import urllib.request

port = os.environ.get("ECP_HTTP_PORT", "8000")
path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except Exception as exc:  # connection refused, timeout, HTTP error: all mean unhealthy
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
