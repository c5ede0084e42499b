"""What setup.py and check.py share: the repository root, the loadtest caller's TLS files and
one grpcurl call."""

import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROFILES = ROOT / "benches" / "ghz"
TLS = ["-cacert", "certs/ca.pem", "-cert", "certs/clients/loadtest.pem",
       "-key", "certs/clients/loadtest.key"]


def grpcurl(host, method, body, extra=()):
    """Calls `method` with `body` (a dict) as the loadtest caller; returns (ok, parsed answer or
    error text). Runs from the repository root, as the profiles do."""
    out = subprocess.run(
        ["grpcurl", *TLS, *extra, "-d", json.dumps(body), host, method],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        return False, (out.stdout + out.stderr).strip()
    return True, json.loads(out.stdout) if out.stdout.strip() else {}
