"""A small Flask shop for tbt's interop tests (runtime/tests/it/slow/interop.rs).

Run under `opentelemetry-instrument` (zero-code instrumentation): Flask server spans, urllib client
spans, sqlite3 query spans and gRPC client and server spans all come from the OpenTelemetry Python
instrumentations, exported with the OTLP exporter the environment chooses (gRPC or HTTP/protobuf).
The only spans written by hand are the queue's producer and consumer spans (the standard library's
`queue` has no instrumentation); they use the SDK's API with the messaging attribute names older
instrumentations still emit.

Listens on 127.0.0.1:$PORT (HTTP) and 127.0.0.1:$GRPC_PORT (gRPC). Routes:
  GET  /health                 readiness probe
  POST /orders                 insert an order (sqlite), look the sku up over gRPC, queue shipping
  GET  /orders/<id>            the order and, one query per line, its items (an N+1)
  GET  /checkout/<id>          calls GET /orders/<id> on this server with urllib (client span)
  GET  /fail                   raises: a 500, an error status and an exception event
"""

import json
import os
import queue
import sqlite3
import threading
import urllib.request
from concurrent import futures

import grpc
from flask import Flask, jsonify, request
from opentelemetry import propagate, trace

PORT = int(os.environ["PORT"])
GRPC_PORT = int(os.environ["GRPC_PORT"])
INVENTORY = "/shop.Inventory/Lookup"

app = Flask(__name__)
tracer = trace.get_tracer("shop.queue")
shipping = queue.Queue(maxsize=1000)
db_lock = threading.Lock()
db = sqlite3.connect(":memory:", check_same_thread=False)
# Queries go through cursors: the instrumentation wraps `cursor.execute` (the connection's
# `execute` shortcut bypasses it).
cursor = db.cursor()
cursor.executescript(
    """
    CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, qty INTEGER NOT NULL);
    CREATE TABLE items (order_id INTEGER NOT NULL, line INTEGER NOT NULL, name TEXT NOT NULL);
    """
)


def identity(b):
    return b


def lookup(req, ctx):
    """The gRPC inventory service: JSON bytes in and out (no generated code needed)."""
    sku = json.loads(req or b"{}").get("sku", "")
    if sku.startswith("missing"):
        ctx.abort(grpc.StatusCode.NOT_FOUND, f"no sku {sku}")
    return json.dumps({"sku": sku, "available": 7}).encode()


grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
grpc_server.add_generic_rpc_handlers(
    (
        grpc.method_handlers_generic_handler(
            "shop.Inventory",
            {"Lookup": grpc.unary_unary_rpc_method_handler(lookup, identity, identity)},
        ),
    )
)
grpc_server.add_insecure_port(f"127.0.0.1:{GRPC_PORT}")
grpc_channel = grpc.insecure_channel(f"127.0.0.1:{GRPC_PORT}")
inventory = grpc_channel.unary_unary(INVENTORY, request_serializer=identity, response_deserializer=identity)


def ship_worker():
    """Consumes the shipping queue: a consumer span continuing and linking to the producer."""
    while True:
        carrier = shipping.get()
        parent = propagate.extract(carrier)
        producer = trace.get_current_span(parent).get_span_context()
        with tracer.start_as_current_span(
            "shipping process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=[trace.Link(producer)],
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": "shipping",
                "messaging.operation": "process",
            },
        ):
            pass


@app.get("/health")
def health():
    return "ok"


@app.post("/orders")
def create_order():
    body = request.get_json(force=True)
    sku, qty = body["sku"], int(body["qty"])
    try:
        reply = json.loads(inventory(json.dumps({"sku": sku}).encode(), timeout=5))
    except grpc.RpcError as e:
        return jsonify({"error": e.details()}), 409
    with db_lock:
        cursor.execute("INSERT INTO orders (sku, qty) VALUES (?, ?)", (sku, qty))
        order_id = cursor.lastrowid
        for line in range(qty):
            cursor.execute("INSERT INTO items (order_id, line, name) VALUES (?, ?, ?)", (order_id, line, sku))
        db.commit()
    with tracer.start_as_current_span(
        "shipping publish",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.destination.name": "shipping",
            "messaging.operation": "publish",
        },
    ):
        carrier = {}
        propagate.inject(carrier)
        shipping.put(carrier, timeout=5)
    return jsonify({"id": order_id, "available": reply["available"]}), 201


@app.get("/orders/<int:order_id>")
def get_order(order_id):
    with db_lock:
        order = cursor.execute("SELECT id, sku, qty FROM orders WHERE id = ?", (order_id,)).fetchone()
        if order is None:
            return jsonify({"error": "not found"}), 404
        # Deliberately one query per line: the N+1 the suite catches.
        items = [
            cursor.execute("SELECT name FROM items WHERE order_id = ? AND line = ?", (order_id, line)).fetchone()[0]
            for line in range(order[2])
        ]
    return jsonify({"id": order[0], "sku": order[1], "items": items})


@app.get("/checkout/<int:order_id>")
def checkout(order_id):
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/orders/{order_id}", timeout=5) as r:
        order = json.load(r)
    return jsonify({"order": order["id"], "lines": len(order["items"])})


@app.get("/fail")
def fail():
    raise RuntimeError("card declined")


if __name__ == "__main__":
    grpc_server.start()
    threading.Thread(target=ship_worker, daemon=True).start()
    app.run(host="127.0.0.1", port=PORT, threaded=True)
