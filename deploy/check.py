#!/usr/bin/env python3
"""Checks what deploy/ ships, here, without Grafana or a systemd host:

- grafana/paygate.json loads as a Grafana dashboard (the classic JSON model: uid, title,
  schemaVersion, templating, panels with ids, grid positions and Prometheus targets) and every
  metric it queries is one the gateway exposes: the names src/telemetry.rs registers, and with
  --metrics-url (a running gateway's admin /metrics) the names that scrape shows; so does
  every paygate_* name docs/OPERATIONS.md mentions;
- paygate.service passes `systemd-analyze verify` (on a copy whose ExecStart names a stub, as
  the real binary is not installed here) and `systemd-analyze security --offline` rates it
  OK or better, with the settings docs/OPERATIONS.md promises and TimeoutStopSec above the
  shutdown grace of paygate.example.toml.

Exit status 1 on any problem. `systemd-analyze` missing: said loudly, and a failure unless
--no-systemd is given.
"""

import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "paygate.json"
UNIT = ROOT / "deploy" / "paygate.service"
TELEMETRY = ROOT / "src" / "telemetry.rs"
TELEMETRY_DIR = ROOT / "src" / "telemetry"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool", "inf", "nan"}
PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap", "row"}
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def exposed_by_source():
    """Sample names src/telemetry.rs (and src/telemetry/*.rs) registers: prefix + name + the
    suffixes of its type."""
    prefix = re.search(r'Registry::with_prefix\("(\w+)"\)', TELEMETRY.read_text()).group(1)
    names = set()
    for path in [TELEMETRY, *sorted(TELEMETRY_DIR.glob("*.rs"))]:
        names |= registered_in(path.read_text(), prefix)
    return names


def registered_in(text, prefix):
    names = set()
    for name, var in re.findall(r'register\(\s*"(\w+)",\s*"[^"]*",\s*(\w+)\.clone\(\)', text, re.S):
        decl = re.search(rf"let {var}\b[^;]*;", text, re.S)
        decl = decl.group(0) if decl else ""
        kind = next((k for k in ("counter", "histogram", "gauge") if k in decl.lower()), None)
        for suffix in SUFFIXES.get(kind, ["", "_total", "_bucket", "_sum", "_count"]):
            names.add(f"{prefix}_{name}{suffix}")
    return names


def exposed_by_scrape(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    names = {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M)}
    # A family shows in a scrape from its first sample on (paygate_grpc_refused_total after the
    # first refusal: cause one before comparing); its TYPE line names the family.
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M):
        names |= {name + suffix for suffix in SUFFIXES.get(kind, [""])}
    return names


def metric_names(expr):
    """The metric names a PromQL expression reads (labels, functions and keywords left out)."""
    expr = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)[^)]*\)", r"\1", expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        if re.match(r"^\d", word) or re.fullmatch(r"e\d*", word):
            continue
        names.add(word)
    return names


def dashboard_problems(dashboard, exposed):
    problems = []
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict), ("time", dict)):
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"dashboard: {key} missing or not a {kind.__name__}")
    if problems:
        return problems
    variables = {v.get("name"): v for v in dashboard["templating"].get("list", [])}
    if variables.get("datasource", {}).get("query") != "prometheus":
        problems.append("dashboard: no Prometheus datasource variable named 'datasource'")
    exprs = []
    for var in variables.values():
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(("variable " + var["name"], query.get("query", "")))
    ids = set()
    for panel in dashboard["panels"]:
        where = f"panel {panel.get('id')} ({panel.get('title')!r})"
        if not isinstance(panel.get("id"), int) or panel["id"] in ids:
            problems.append(f"{where}: id missing or repeated")
        ids.add(panel.get("id"))
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: unknown type {panel.get('type')!r}")
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: gridPos needs integer h, w, x, y within 24 columns")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: datasource is not the ${{datasource}} variable")
        targets = panel.get("targets", [])
        refs = [t.get("refId") for t in targets]
        if not targets or len(set(refs)) != len(refs) or not all(refs):
            problems.append(f"{where}: needs targets with distinct refIds")
        exprs += [(where, t.get("expr", "")) for t in targets]
    for where, expr in exprs:
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: queries no metric: {expr}")
        for name in sorted(names - exposed):
            problems.append(f"{where}: queries {name}, which the gateway does not expose")
    return problems


def systemd_problems(required):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return ["systemd-analyze is not installed: the unit was NOT verified"] if required else []
    text = UNIT.read_text()
    problems = []
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("Restart", "on-failure"), ("ExecReload", "/bin/kill -HUP $MAINPID")):
        if settings.get(key) != want:
            problems.append(f"paygate.service: {key}={settings.get(key)} (want {want})")
    if "ReadWritePaths" not in settings or not ("DynamicUser" in settings or "User" in settings):
        problems.append("paygate.service: needs ReadWritePaths and a User (or DynamicUser)")
    grace_ms = tomllib.loads((ROOT / "paygate.example.toml").read_text())["server"]["shutdown_grace_ms"]
    stop = re.fullmatch(r"(\d+)s", settings.get("TimeoutStopSec", ""))
    if not stop or int(stop.group(1)) * 1000 <= grace_ms:
        problems.append(f"paygate.service: TimeoutStopSec must be above the {grace_ms} ms grace")
    binary = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        stub = pathlib.Path(tmp) / "paygate"
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
        copy = pathlib.Path(tmp) / "paygate.service"
        copy.write_text(text.replace(binary, str(stub)))
        verify = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
        if verify.returncode != 0 or verify.stderr.strip():
            problems.append(f"systemd-analyze verify: {verify.stderr.strip() or verify.returncode}")
        security = subprocess.run([analyze, "security", "--offline=true", str(copy)],
                                  capture_output=True, text=True)
        level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", security.stdout)
        if not level or float(level.group(1)) > 2.0:
            problems.append("systemd-analyze security: exposure above 2.0 (OK): "
                            + (level.group(0) if level else security.stderr.strip()))
        else:
            print(f"paygate.service: verify clean; {level.group(0)}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics-url", help="a running gateway's /metrics to compare against")
    parser.add_argument("--no-systemd", action="store_true",
                        help="pass where systemd-analyze is not installed")
    args = parser.parse_args()
    exposed = exposed_by_source()
    problems = []
    if args.metrics_url:
        scraped = exposed_by_scrape(args.metrics_url)
        problems += [f"src/telemetry.rs names {n}, the scrape does not show it"
                     for n in sorted(exposed - scraped)]
        exposed &= scraped
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        problems.append(f"{DASHBOARD.name} does not parse: {e}")
    else:
        problems += dashboard_problems(dashboard, exposed)
        print(f"{DASHBOARD.name}: {len(dashboard.get('panels', []))} panels checked against "
              f"{len(exposed)} exposed sample names")
    # The metric table and the alert rules of the operations guide name real metrics too.
    documented = set(re.findall(r"\b(paygate_[a-z_]+)\b", OPERATIONS.read_text()))
    histograms = {n.removesuffix("_bucket") for n in exposed if n.endswith("_bucket")}
    problems += [f"{OPERATIONS.name} names {n}, which the gateway does not expose"
                 for n in sorted(documented - exposed - histograms)]
    problems += systemd_problems(required=not args.no_systemd)
    for problem in problems:
        print(problem)
    print("ok" if not problems else f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
