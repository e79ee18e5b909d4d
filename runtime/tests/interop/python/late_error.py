"""A Flask service whose error comes after its answer, for tbt's completion tests
(runtime/tests/it/slow/completion.rs, absence).

Run under `opentelemetry-instrument` (the Flask server span is the instrumentation's). After
answering `GET /work`, a background thread waits 100–400 ms (uniformly at random) and records an
INTERNAL span `reconcile order` with status ERROR and an exception event, as a child of the
request's server span — so it belongs to the trace of the request — the way an asynchronous
follow-up (a retry, a cache refresh, a webhook) fails after the caller already got its 200. An
`expect no span[status == error]` on that trace must fail; it passes only if the verdict comes
before the span was exported.

Listens on 127.0.0.1:$PORT. Routes:
  GET /health   readiness probe (exclude it from tracing: OTEL_PYTHON_FLASK_EXCLUDED_URLS=health)
  GET /work     200 at once; the error span follows 100–400 ms later
"""

import os
import random
import threading

from flask import Flask, jsonify
from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode

PORT = int(os.environ["PORT"])

app = Flask(__name__)
tracer = trace.get_tracer("late.reconcile")


def reconcile(parent):
    token = context.attach(parent)
    try:
        with tracer.start_as_current_span("reconcile order", kind=trace.SpanKind.INTERNAL) as span:
            error = RuntimeError("reconciliation failed")
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
    finally:
        context.detach(token)


@app.get("/health")
def health():
    return "ok"


@app.get("/work")
def work():
    # The request's context (its server span is current here) travels to the timer's thread.
    timer = threading.Timer(random.uniform(0.1, 0.4), reconcile, args=(context.get_current(),))
    timer.daemon = True
    timer.start()
    return jsonify({"ok": True})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=PORT, threaded=True)
