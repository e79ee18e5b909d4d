"""Verdict latency by exporter delay (issue 11; run through .ci/verdict-latency.sh).

For each batch delay (OTEL_BSP_SCHEDULE_DELAY: 20 ms, 100 ms, 1 s, 5 s by default), starts the
Flask interop app (runtime/tests/interop/python/app.py) under `opentelemetry-instrument`, outside
tbt, exporting OTLP/gRPC through a pass-through forwarder (runtime/tests/interop/python/forwarder.py
--batch-ms 0), which logs the wall-clock time at which tbt acknowledged each request, then runs
`tbt run runtime/tests/interop/suites/latency.tbt` RUNS times at tbt's default settings with
`--report json=…`, and prints a table:

- trigger → verdict: the step's `duration_ms` from the JSON report (trigger start to verdict);
- last span after the trigger: when tbt acknowledged the last of the trace's spans that arrived
  before the verdict, relative to the trigger;
- verdict after the last span: the difference of the two;
- late: runs in which some of the trace's spans reached the forwarder only after the verdict
  (tbt decided without them).

The JSON report gives durations, not wall-clock times, so the trigger's time is taken as the
start of the app's server span (the request reaching Flask; tbt's trigger span starts a
millisecond or so earlier): the figures relative to the trigger are late by about that much.

Usage: python3 verdict_latency.py --tbt PATH --venv VENV/bin [--runs N] [--delays 20,100,1000,5000]
[-- extra tbt run flags]
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
INTEROP = os.path.join(REPO, "runtime", "tests", "interop")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env, log, cwd=None):
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def wait_until(what, proc, ready, within=60):
    deadline = time.monotonic() + within
    while not ready():
        if proc.poll() is not None:
            sys.exit(f"verdict-latency: {what} exited ({proc.returncode}) before it was ready")
        if time.monotonic() > deadline:
            sys.exit(f"verdict-latency: {what} not ready within {within} s")
        time.sleep(0.05)


def tcp_ok(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def http_ok(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "TBT_OTLP_TOKEN"}


def measure(args, delay_ms, work):
    tbt_port = free_port()
    fwd_port = free_port()
    app_port = free_port()
    fwd_log = os.path.join(work, f"forwarder-{delay_ms}.jsonl")
    logs = open(os.path.join(work, f"processes-{delay_ms}.log"), "w")
    fwd = start(
        [
            os.path.join(args.venv, "python"),
            os.path.join(INTEROP, "python", "forwarder.py"),
            "--listen",
            f"127.0.0.1:{fwd_port}",
            "--to",
            f"127.0.0.1:{tbt_port}",
            "--batch-ms",
            "0",
            "--log",
            fwd_log,
        ],
        dict(clean_env(), PYTHONUNBUFFERED="1"),
        logs,
    )
    app = None
    runs = []
    try:
        wait_until("the forwarder", fwd, lambda: tcp_ok(fwd_port))
        env = dict(
            clean_env(),
            PORT=str(app_port),
            GRPC_PORT=str(free_port()),
            PYTHONUNBUFFERED="1",
            OTEL_SERVICE_NAME="flask",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{fwd_port}",
            OTEL_PYTHON_FLASK_EXCLUDED_URLS="health",
            OTEL_BSP_SCHEDULE_DELAY=str(delay_ms),
        )
        app = start(
            [os.path.join(args.venv, "opentelemetry-instrument"), os.path.join(args.venv, "python"), "app.py"],
            env,
            logs,
            cwd=os.path.join(INTEROP, "python"),
        )
        wait_until("the app", app, lambda: http_ok(app_port))
        project = os.path.join(work, f"project-{delay_ms}")
        os.makedirs(project, exist_ok=True)
        for i in range(args.runs):
            report = os.path.join(work, f"report-{delay_ms}-{i}.json")
            cmd = [
                args.tbt,
                "--color",
                "never",
                "run",
                os.path.join(INTEROP, "suites", "latency.tbt"),
                "--var",
                f"base=http://127.0.0.1:{app_port}",
                "--otlp-grpc",
                f"127.0.0.1:{tbt_port}",
                "--otlp-http",
                "127.0.0.1:0",
                "--report",
                f"json={report}",
                *args.extra,
            ]
            out = subprocess.run(cmd, cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120)
            try:
                with open(report, encoding="utf-8") as f:
                    step = json.load(f)["tests"][0]["steps"][0]
            except (OSError, ValueError, KeyError, IndexError):
                sys.exit(f"verdict-latency: no report from tbt (exit {out.returncode}):\n{out.stdout}{out.stderr}")
            runs.append(
                {
                    "exit": out.returncode,
                    "status": step["status"],
                    "trace_id": step.get("trace_id"),
                    "duration_ms": step["duration_ms"],
                    "spans": step["spans"],
                }
            )
        # Spans still in the app's queue after the last run: let them reach the forwarder (and be
        # dropped there, tbt having exited) so that they count as late.
        time.sleep(delay_ms / 1000 + 1)
    finally:
        if app is not None:
            stop(app)
        stop(fwd)
        logs.close()
    arrivals = {}
    with open(fwd_log, encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            at = entry.get("acked_ns", entry.get("dropped_ns"))
            for s in entry["spans"]:
                arrivals.setdefault(s["trace_id"], []).append((at, s["start_ns"], "acked_ns" in entry))
    for r in runs:
        seen = arrivals.get(r["trace_id"], [])
        if not seen:
            r.update(last_ms=None, after_last_ms=None, late=True)
            continue
        trigger = min(start for _, start, _ in seen)
        verdict = trigger + r["duration_ms"] * 1_000_000
        before = [at for at, _, acked in seen if acked and at <= verdict]
        r["late"] = any(at > verdict or not acked for at, _, acked in seen)
        if before:
            last = max(before)
            r["last_ms"] = (last - trigger) / 1e6
            r["after_last_ms"] = (verdict - last) / 1e6
        else:
            r["last_ms"] = r["after_last_ms"] = None
    return runs


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tbt", required=True)
    p.add_argument("--venv", required=True, help="the virtualenv's bin directory")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--delays", default="20,100,1000,5000")
    p.add_argument("extra", nargs="*", help="more `tbt run` flags, after --")
    args = p.parse_args()
    args.tbt = os.path.abspath(args.tbt)
    work = tempfile.mkdtemp(prefix="tbt-verdict-latency-")
    rows = []
    for delay in [int(d) for d in args.delays.split(",")]:
        print(f"--- exporter delay {delay} ms: {args.runs} runs", file=sys.stderr, flush=True)
        runs = measure(args, delay, work)
        for i, r in enumerate(runs):
            print(f"  run {i + 1}: {json.dumps(r)}", file=sys.stderr, flush=True)
        rows.append(
            "| {} ms | {} | {} | {} | {} | {} | {} |".format(
                delay,
                len(runs),
                sum(r["status"] == "passed" for r in runs),
                spread([r["duration_ms"] for r in runs]),
                spread([r["last_ms"] for r in runs]),
                spread([r["after_last_ms"] for r in runs]),
                sum(r["late"] for r in runs),
            )
        )
    print(
        "| exporter delay | runs | passed | trigger → verdict, ms: median (min–max) "
        "| last span after the trigger, ms | verdict after the last span, ms | runs with spans after the verdict |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"(logs and reports in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
