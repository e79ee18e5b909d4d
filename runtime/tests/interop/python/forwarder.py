"""An OTLP/gRPC trace forwarder for tbt's completion tests (runtime/tests/it/slow/completion.rs) and the
verdict-latency measurement (.ci/verdict-latency.sh): what a Collector between the system and tbt does.

    python forwarder.py --to 127.0.0.1:PORT [--listen 127.0.0.1:0] [--batch-ms 1000] [--log PATH]

Serves `opentelemetry.proto.collector.trace.v1.TraceService/Export` on --listen (port 0: a free
one) and prints `listening 127.0.0.1:PORT` on stdout once it accepts requests. Spans go on to
--to, the tbt receiver:

- `--batch-ms N` (N > 0): like the Collector's batch processor with `timeout: N ms`: a request is
  acknowledged at once and buffered; every N ms whatever has accumulated is sent as one request.
  What cannot be sent (tbt not listening yet, or gone) is kept for the next tick (at most 10,000
  requests), as the Collector's retry queue does.
- `--batch-ms 0`: pass-through: a request is forwarded before it is acknowledged. If tbt does not
  take it, it is dropped (and acknowledged anyway), so the SDK's exporter never backs off: the
  measurement runs tbt many times against one long-lived app.

`--log PATH`: one JSON line per request tbt acknowledged: `{"acked_ns": wall-clock time of tbt's
answer, "spans": [{"trace_id", "span_id", "name", "service", "start_ns", "end_ns"}]}`, and one
`{"dropped_ns": …, "spans": […]}` line per request that could not be delivered.
"""

import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

MAX_PENDING = 10_000


def spans_of(request):
    out = []
    for rs in request.resource_spans:
        service = ""
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = kv.value.string_value
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "name": s.name,
                        "service": service,
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                    }
                )
    return out


class Downstream:
    """The connection to tbt. A fresh channel after every failure: a failed channel would wait
    out gRPC's reconnect backoff (a second or more) before trying again."""

    def __init__(self, target, log):
        self.target = target
        self.log = log
        self.log_lock = threading.Lock()
        self.channel = None
        self.stub = None

    def send(self, request):
        if self.stub is None:
            self.channel = grpc.insecure_channel(self.target)
            self.stub = trace_service_pb2_grpc.TraceServiceStub(self.channel)
        try:
            self.stub.Export(request, timeout=5)
        except grpc.RpcError as e:
            print(f"forwarder: tbt at {self.target} did not take the spans: {e.code()}", file=sys.stderr, flush=True)
            self.channel.close()
            self.channel, self.stub = None, None
            return False
        self.record("acked_ns", request)
        return True

    def record(self, what, request):
        if self.log is None:
            return
        line = json.dumps({what: time.time_ns(), "spans": spans_of(request)})
        with self.log_lock:
            self.log.write(line + "\n")
            self.log.flush()


class Forwarder(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, downstream, batch_ms):
        self.downstream = downstream
        self.batch_ms = batch_ms
        self.pending = []
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()

    def Export(self, request, context):
        if self.batch_ms == 0:
            with self.send_lock:
                if not self.downstream.send(request):
                    self.downstream.record("dropped_ns", request)
        else:
            with self.lock:
                if len(self.pending) < MAX_PENDING:
                    self.pending.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def flush_forever(self, stop):
        while not stop.wait(self.batch_ms / 1000):
            with self.lock:
                batch, self.pending = self.pending, []
            if not batch:
                continue
            merged = trace_service_pb2.ExportTraceServiceRequest()
            for r in batch:
                merged.resource_spans.extend(r.resource_spans)
            if not self.downstream.send(merged):
                with self.lock:
                    self.pending = (batch + self.pending)[:MAX_PENDING]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--to", required=True)
    p.add_argument("--batch-ms", type=int, default=1000)
    p.add_argument("--log")
    a = p.parse_args()
    log = open(a.log, "a", encoding="utf-8") if a.log else None
    forwarder = Forwarder(Downstream(a.to, log), a.batch_ms)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(forwarder, server)
    port = server.add_insecure_port(a.listen)
    server.start()
    stop = threading.Event()
    if a.batch_ms > 0:
        threading.Thread(target=forwarder.flush_forever, args=(stop,), daemon=True).start()
    host = a.listen.rsplit(":", 1)[0]
    print(f"listening {host}:{port}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    stop.set()


if __name__ == "__main__":
    main()
