"""First runs against fresh systems (issue 27; run through .ci/fresh-system.sh).

The CI case of trace completion: a system started fresh, outside tbt, and a first `tbt run` in a
fresh project directory. Each round starts, for each offset (0, 1, 2, 3, 4 s by default: five
points of the SDKs' 5 s batch period), a Node gateway (runtime/tests/interop/node/app.js with
UPSTREAM) in front of the Flask app (runtime/tests/interop/python/app.py under
`opentelemetry-instrument`), both at the SDKs' default batch delay, seeds an order through Flask
before tbt is up, waits the offset, and runs `tbt run flask.tbt gateway.tbt` at tbt's default
settings (timeout 10 s) with `--report json=…`. The systems of a round run side by side.

Prints a table per offset over all rounds, for the passing steps: how many, how many were
decided later than the bound (the export delay + 1 s, or 1 s after the step's last span when the
system's spans came later than the export delay), how many ended at the timeout, and the time
from trigger to verdict (median, max); and whether each run failed for its intended reason only
(the N+1 test). Exit status 1 if any step missed the bound or any run failed otherwise.

Usage: python3 fresh_system.py --tbt PATH --venv VENV/bin [--rounds N] [--offsets 0,1000,…]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verdict_latency import INTEROP, clean_env, free_port, http_ok, start, stop, wait_until  # noqa: E402

EXPORT_DELAY_MS = 5000


def seed(port):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/orders",
        data=json.dumps({"sku": "sku-42", "qty": 2}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["id"]


def one(args, work, name, offset_ms, out):
    grpc, http, port, gw = free_port(), free_port(), free_port(), free_port()
    logs = open(os.path.join(work, f"{name}.log"), "w")
    base = dict(clean_env(), OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    procs = []
    try:
        flask = start(
            [os.path.join(args.venv, "opentelemetry-instrument"), os.path.join(args.venv, "python"), "app.py"],
            dict(
                base,
                PORT=str(port),
                GRPC_PORT=str(free_port()),
                PYTHONUNBUFFERED="1",
                OTEL_SERVICE_NAME="flask",
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{grpc}",
                OTEL_PYTHON_FLASK_EXCLUDED_URLS="health",
            ),
            logs,
            cwd=os.path.join(INTEROP, "python"),
        )
        procs.append(flask)
        node = start(
            ["node", "app.js"],
            dict(
                base,
                PORT=str(gw),
                UPSTREAM=f"http://127.0.0.1:{port}",
                OTEL_SERVICE_NAME="node_shop",
                OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{http}",
            ),
            logs,
            cwd=os.path.join(INTEROP, "node"),
        )
        procs.append(node)
        wait_until("the Flask app", flask, lambda: http_ok(port))
        wait_until("the Node gateway", node, lambda: http_ok(gw))
        order = seed(port)
        time.sleep(offset_ms / 1000)  # the stimulus: where in the exporters' period tbt starts
        project = os.path.join(work, name)
        os.makedirs(project)
        report = os.path.join(project, "report.json")
        suites = os.path.join(INTEROP, "suites")
        cmd = [
            args.tbt, "--color", "never", "run",
            os.path.join(suites, "flask.tbt"), os.path.join(suites, "gateway.tbt"),
            "--var", f"base=http://127.0.0.1:{port}",
            "--var", f"gateway=http://127.0.0.1:{gw}",
            "--var", f"order={order}",
            "--otlp-grpc", f"127.0.0.1:{grpc}", "--otlp-http", f"127.0.0.1:{http}",
            "--report", f"json={report}",
        ]
        done = subprocess.run(cmd, cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120)
        with open(report, encoding="utf-8") as f:
            out[name] = (offset_ms, done.returncode, json.load(f), done.stdout + done.stderr)
    except Exception as e:  # noqa: BLE001 — reported with the run's name
        out[name] = (offset_ms, None, None, f"{type(e).__name__}: {e}")
    finally:
        for p in procs:
            stop(p)
        logs.close()


def judge(offset_ms, code, report):
    """(passing steps as (decided_ms, last_ms, timed_out), problems)"""
    steps, problems = [], []
    if report is None:
        return steps, ["no report"]
    for t in report["tests"]:
        wanted = "failed" if t["name"] == "n_plus_one" else "passed"
        if t["status"] != wanted:
            problems.append(f"{t['name']} {t['status']}, expected {wanted}")
        for s in t["steps"]:
            stop_ = s.get("stop")
            if s["status"] != "passed" or not stop_:
                continue
            ms = s["duration_ms"]
            last = ms - stop_.get("quiet_ms", 0) if "quiet_ms" in stop_ else None
            steps.append((ms, last, stop_["reason"] == "timeout"))
    if code != 1:
        problems.append(f"exit {code}, expected 1 (the N+1)")
    return steps, problems


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tbt", required=True)
    p.add_argument("--venv", required=True, help="the virtualenv's bin directory")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--offsets", default="0,1000,2000,3000,4000")
    args = p.parse_args()
    args.tbt = os.path.abspath(args.tbt)
    offsets = [int(o) for o in args.offsets.split(",")]
    work = tempfile.mkdtemp(prefix="tbt-fresh-system-")
    per = {o: {"steps": [], "late": 0, "timeouts": 0, "bad": []} for o in offsets}
    for r in range(args.rounds):
        print(f"--- round {r + 1} of {args.rounds}", file=sys.stderr, flush=True)
        out = {}
        threads = [
            threading.Thread(target=one, args=(args, work, f"r{r}-o{o}", o, out)) for o in offsets
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, (o, code, report, text) in sorted(out.items()):
            steps, problems = judge(o, code, report)
            row = per[o]
            for ms, last, timed_out in steps:
                bound = max(EXPORT_DELAY_MS, last or 0) + 1000
                row["steps"].append(ms)
                row["late"] += ms > bound
                row["timeouts"] += timed_out
            if problems:
                row["bad"].append(f"{name}: {'; '.join(problems)}")
                print(f"  {name}: {'; '.join(problems)}\n{text}", file=sys.stderr)
            print(f"  {name}: {[s[0] for s in steps]} ms", file=sys.stderr, flush=True)
    print("| offset | runs | passing steps | later than the bound | at the timeout | trigger → verdict, median / max ms | runs failing otherwise |")
    print("|---|---|---|---|---|---|---|")
    failed = False
    for o in offsets:
        row = per[o]
        s = row["steps"]
        print(
            f"| {o} ms | {args.rounds} | {len(s)} | {row['late']} | {row['timeouts']} | "
            f"{statistics.median(s) if s else '—'} / {max(s) if s else '—'} | {len(row['bad'])} |"
        )
        failed |= bool(row["late"] or row["timeouts"] or row["bad"])
    print(f"(logs and reports in {work})", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
