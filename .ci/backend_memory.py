"""Peak memory of `tbt run` reading one huge trace from a backend (issue 28; run through
.ci/backend-memory.sh).

Writes a Tempo answer (protobuf's canonical JSON, as Tempo serves it: base64 ids, enum names) of
SPANS spans in one trace (a binary tree of `SELECT` client spans with two attributes each), serves
it on 127.0.0.1 from a small HTTP server (every GET answers it, `application/json`), and runs
`tbt run` of a one-test suite (`trigger trace`, one expectation over the spans) with
`--traces tempo=…` under `/usr/bin/time -v`; prints the answer's size, tbt's exit status, wall
time and peak RSS (`Maximum resident set size`).

With `--via receiver`, the same spans are sent instead to tbt's embedded receiver over OTLP/HTTP
JSON (hex ids, numeric enums), in requests of 10,000 spans, once `tbt run` listens; the suite's
`trigger trace` step waits for them there.

Usage: python3 backend_memory.py --tbt PATH [--spans 200000] [--via tempo|receiver]
"""

import argparse
import base64
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import socket
import threading
import time
import urllib.request

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def answer(n):
    tid = base64.b64encode(bytes.fromhex(TRACE)).decode()
    b64 = lambda i: base64.b64encode(i.to_bytes(8, "big")).decode()  # noqa: E731
    spans = []
    for i in range(1, n + 1):
        span = {
            "traceId": tid,
            "spanId": b64(i),
            "name": f"SELECT orders {i % 100}",
            "kind": "SPAN_KIND_CLIENT",
            "startTimeUnixNano": str(1700000000000000000 + i * 1000),
            "endTimeUnixNano": str(1700000000000000000 + i * 1000 + 500),
            "attributes": [
                {"key": "db.system.name", "value": {"stringValue": "postgresql"}},
                {"key": "db.query.text", "value": {"stringValue": f"SELECT * FROM orders WHERE id = {i}"}},
            ],
            "status": {"code": "STATUS_CODE_OK"},
        }
        if i > 1:
            span["parentSpanId"] = b64(i // 2)
        spans.append(span)
    doc = {
        "batches": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
                "scopeSpans": [{"scope": {"name": "db"}, "spans": spans}],
            }
        ]
    }
    return json.dumps(doc).encode()


def otlp_requests(n, per=10_000):
    """OTLP/HTTP JSON requests of `per` spans each: hex ids, numeric enums."""
    for first in range(1, n + 1, per):
        spans = []
        for i in range(first, min(n, first + per - 1) + 1):
            span = {
                "traceId": TRACE,
                "spanId": f"{i:016x}",
                "name": f"SELECT orders {i % 100}",
                "kind": 3,
                "startTimeUnixNano": str(1700000000000000000 + i * 1000),
                "endTimeUnixNano": str(1700000000000000000 + i * 1000 + 500),
                "attributes": [
                    {"key": "db.system.name", "value": {"stringValue": "postgresql"}},
                    {"key": "db.query.text", "value": {"stringValue": f"SELECT * FROM orders WHERE id = {i}"}},
                ],
                "status": {"code": 1},
            }
            if i > 1:
                span["parentSpanId"] = f"{i // 2:016x}"
            spans.append(span)
        yield json.dumps({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeSpans": [{"scope": {"name": "db"}, "spans": spans}],
        }]}).encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tbt", required=True)
    p.add_argument("--spans", type=int, default=200_000)
    p.add_argument("--via", choices=["tempo", "receiver"], default="tempo")
    args = p.parse_args()
    if args.via == "receiver":
        return via_receiver(args)
    body = answer(args.spans)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="tbt-backend-memory-")
    with open(os.path.join(work, "big.tbt"), "w") as f:
        f.write(
            f'test big {{\n  trigger trace "{TRACE}"\n  expect span[name == "SELECT orders 7"] {{\n'
            f"    count == {args.spans // 100}\n  }}\n}}\n"
        )
    run = subprocess.run(
        ["/usr/bin/time", "-v", os.path.abspath(args.tbt), "--color", "never", "run", "big.tbt",
         "--traces", f"tempo=http://127.0.0.1:{server.server_address[1]}", "--timeout", "120s"],
        cwd=work, capture_output=True, text=True,
    )
    server.shutdown()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", run.stderr)
    summary = [l for l in run.stderr.splitlines() if "passed," in l or l.startswith("error")]
    print(f"spans: {args.spans}, answer: {len(body) / 1e6:.1f} MB, exit {run.returncode}, "
          f"wall {wall.group(1) if wall else '?'}, peak RSS {int(rss.group(1)) / 1024:.0f} MiB"
          if rss else run.stderr)
    print("\n".join(summary))
    sys.exit(0 if run.returncode == 0 else 1)


def suite(work, spans):
    with open(os.path.join(work, "big.tbt"), "w") as f:
        f.write(
            f'test big {{\n  trigger trace "{TRACE}"\n  expect span[name == "SELECT orders 7"] {{\n'
            f"    count == {spans // 100}\n  }}\n}}\n"
        )


def report(run_stderr, returncode, size, spans):
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run_stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", run_stderr)
    summary = [l for l in run_stderr.splitlines() if "passed," in l or l.startswith("error")]
    print(f"spans: {spans}, sent: {size / 1e6:.1f} MB, exit {returncode}, "
          f"wall {wall.group(1) if wall else '?'}, peak RSS {int(rss.group(1)) / 1024:.0f} MiB"
          if rss else run_stderr)
    print("\n".join(summary))
    sys.exit(0 if returncode == 0 else 1)


def via_receiver(args):
    work = tempfile.mkdtemp(prefix="tbt-receiver-memory-")
    suite(work, args.spans)
    port = free_port()
    run = subprocess.Popen(
        ["/usr/bin/time", "-v", os.path.abspath(args.tbt), "--color", "never", "run", "big.tbt",
         "--otlp-http", f"127.0.0.1:{port}", "--otlp-grpc", "127.0.0.1:0", "--timeout", "120s"],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or run.poll() is not None:
                sys.exit("tbt's receiver did not listen")
            time.sleep(0.05)
    size = 0
    for body in otlp_requests(args.spans):
        size += len(body)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", data=body,
                                     headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
    _, err = run.communicate(timeout=300)
    report(err, run.returncode, size, args.spans)


if __name__ == "__main__":
    main()
