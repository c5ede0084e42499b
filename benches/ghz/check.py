#!/usr/bin/env python3
"""Checks the ghz profiles in this folder without ghz.

Always: each profile parses as JSON, uses only settings of ghz's config file, names a method
that exists in its proto file, and every file it points at exists (the Pay data files once
setup.py has written them). With --live HOST (a running gateway, set up by setup.py): renders
each profile's call data as ghz would for one call (its template placeholders filled in) and
sends it with grpcurl, with the profile's own TLS files and proto; the call must succeed.
"""

import argparse
import json
import re
import sys
import uuid

from common import PROFILES, ROOT, grpcurl

# ghz's config file settings (runner/config.go in bojand/ghz: the `json` tags of Config).
GHZ_SETTINGS = {
    "proto", "protoset", "call", "cacert", "cert", "key", "skipTLS", "cname", "authority",
    "insecure", "total", "concurrency", "connections", "qps", "duration", "duration-stop",
    "max-duration", "timeout", "data", "data-file", "binary-file", "metadata", "metadata-file",
    "stream-interval", "output", "format", "connect-timeout", "keepalive", "cpus",
    "import-paths", "name", "tags", "reflect-metadata", "debug", "host", "enable-compression",
}
# What profiles here must set: mutual TLS with the loadtest caller, a proto, a host.
REQUIRED = {"proto", "import-paths", "call", "host", "cacert", "cert", "key", "total",
            "concurrency"}
# Files that exist once the gateway has started (its development PKI: git-ignored) or once
# setup.py has run (the Pay data).
WRITTEN_LATER = {
    "certs/ca.pem": "the gateway's first start",
    "certs/clients/loadtest.pem": "the gateway's first start",
    "certs/clients/loadtest.key": "the gateway's first start",
    "benches/ghz/data/pay.json": "setup.py",
    "benches/ghz/data/hot-merchant-pay.json": "setup.py",
}
# ghz's call template data (runner/call_template_data.go) filled in for one call.
TEMPLATE = [
    (re.compile(r"\{\{\s*newUUID\s*\}\}"), lambda: str(uuid.uuid4())),
    (re.compile(r"\{\{\s*\.UUID\s*\}\}"), lambda: str(uuid.uuid4())),
    (re.compile(r"\{\{\s*\.RequestNumber\s*\}\}"), lambda: "0"),
    (re.compile(r"\{\{\s*\.WorkerID\s*\}\}"), lambda: "g0c0"),
]


def profiles():
    return sorted(p for p in PROFILES.glob("*.json"))


def proto_methods(proto):
    """{'paygate.v1.AccountService/GetBalance', ...} declared in one .proto file."""
    text = proto.read_text()
    package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
    methods = set()
    for service, body in re.findall(r"service\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
        for rpc in re.findall(r"rpc\s+(\w+)\s*\(", body):
            methods.add(f"{package}.{service}/{rpc}")
    return methods


def canonical_call(call):
    """ghz accepts 'package.Service/Method' and 'package.Service.Method'."""
    if "/" in call:
        return call
    head, _, method = call.rpartition(".")
    return f"{head}/{method}"


def loadtest_is_a_sample_caller():
    """The dev PKI has a client certificate for every configured caller: loadtest must be one."""
    text = (ROOT / "paygate.example.toml").read_text()
    return re.search(r'^name = "loadtest"$', text, re.M) is not None


def static_problems(path):
    try:
        profile = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return [f"does not parse: {e}"], None
    problems = [f"unknown ghz setting {k!r}" for k in sorted(set(profile) - GHZ_SETTINGS)]
    problems += [f"missing {k!r}" for k in sorted(REQUIRED - set(profile))]
    if ("data" in profile) == ("data-file" in profile):
        problems.append("needs exactly one of 'data' and 'data-file'")
    files = [profile.get(k) for k in ("proto", "cacert", "cert", "key", "data-file")]
    for file in filter(None, files):
        if not (ROOT / file).exists() and file not in WRITTEN_LATER:
            problems.append(f"points at {file}, which does not exist")
    for folder in profile.get("import-paths", []):
        if not (ROOT / folder).is_dir():
            problems.append(f"import path {folder} is not a folder")
    proto = ROOT / profile.get("proto", "")
    if proto.is_file():
        call = canonical_call(profile.get("call", ""))
        if call not in proto_methods(proto):
            problems.append(f"call {profile.get('call')!r} is not in {profile['proto']}")
    if profile.get("total", 0) < profile.get("concurrency", 0):
        problems.append("total is below concurrency (ghz refuses that)")
    return problems, profile


def render(text):
    for pattern, value in TEMPLATE:
        text = pattern.sub(lambda _m: value(), text)
    if "{{" in text:
        raise ValueError(f"a template placeholder this check does not know: {text}")
    return json.loads(text)


def one_call_body(profile):
    """The call data of a profile's first call, as ghz renders it."""
    if "data" in profile:
        return render(json.dumps(profile["data"]))
    data = json.loads((ROOT / profile["data-file"]).read_text())
    first = data[0] if isinstance(data, list) else data
    return render(json.dumps(first))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", metavar="HOST", help="also send one call per profile")
    args = parser.parse_args()
    failed = not loadtest_is_a_sample_caller()
    if failed:
        print("paygate.example.toml has no loadtest caller: certs/clients/loadtest.* never exist")
    for path in profiles():
        problems, profile = static_problems(path)
        if not problems and args.live:
            try:
                body = one_call_body(profile)
            except (OSError, ValueError) as e:
                problems.append(f"call data: {e} (has setup.py run?)")
            else:
                extra = ["-proto", profile["proto"]]
                for folder in profile["import-paths"]:
                    extra += ["-import-path", folder]
                ok, answer = grpcurl(args.live, canonical_call(profile["call"]), body, extra)
                if not ok:
                    problems.append(f"one call with {json.dumps(body)} failed:\n{answer}")
                else:
                    print(f"{path.name}: one call answered: {json.dumps(answer)[:160]}")
        for problem in problems:
            print(f"{path.name}: {problem}")
        failed |= bool(problems)
        if not problems:
            print(f"{path.name}: ok")
    if not profiles():
        print("no profiles found")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
