// A small Node.js service for tbt's interop tests (runtime/tests/it/slow/interop.rs).
//
// Instrumented with the OpenTelemetry JS SDK (`@opentelemetry/sdk-node`): HTTP server and client
// spans come from `@opentelemetry/instrumentation-http`; spans are exported over OTLP HTTP/JSON
// (`@opentelemetry/exporter-trace-otlp-http`) to $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces. The database and queue spans are written by hand with
// the SDK's API and the current semantic-convention names (Node has no SQLite or queue here).
//
// Listens on 127.0.0.1:$PORT. Routes:
//   GET /health           readiness probe
//   GET /orders/{id}      the order: a stock check over HTTP on this server, one SELECT per line
//                         (an N+1), and a message to the `shipping` queue
//   GET /stock/{sku}      the stock check's target
//   GET /fail             a 500 with an exception recorded on the server span
//   GET /proxy/orders/{id}  with $UPSTREAM (e.g. http://127.0.0.1:5000, the Flask app): that
//                         service's GET /orders/{id}, passed through (status and body) — a
//                         gateway in front of another instrumented service
'use strict';

const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');

const sdk = new NodeSDK({
  serviceName: process.env.OTEL_SERVICE_NAME || 'node-shop',
  traceExporter: new OTLPTraceExporter(),
  instrumentations: [
    new HttpInstrumentation({
      // The readiness probe is not part of any test's trace.
      ignoreIncomingRequestHook: (req) => req.url === '/health',
    }),
  ],
});
sdk.start();

// Required after the SDK started, so that `http` is instrumented.
const http = require('http');
const { context, propagation, trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');

const port = Number(process.env.PORT);
const tracer = trace.getTracer('node-shop');
const queue = [];

function setRoute(route) {
  const span = trace.getActiveSpan();
  if (span) {
    span.setAttribute('http.route', route);
    span.updateName(`GET ${route}`);
  }
}

function query(text, table) {
  const span = tracer.startSpan(`SELECT ${table}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'db.system.name': 'sqlite',
      'db.query.text': text,
      'db.operation.name': 'SELECT',
      'db.collection.name': table,
      'db.namespace': 'shop',
    },
  });
  span.end();
}

function publish(message) {
  const span = tracer.startSpan('send shipping', {
    kind: SpanKind.PRODUCER,
    attributes: {
      'messaging.system': 'kafka',
      'messaging.destination.name': 'shipping',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
    },
  });
  const headers = {};
  propagation.inject(trace.setSpan(context.active(), span), headers);
  queue.push({ headers, message, producer: span.spanContext() });
  span.end();
  setImmediate(consume);
}

function consume() {
  const item = queue.shift();
  if (!item) return;
  const parent = propagation.extract(context.active(), item.headers);
  const span = tracer.startSpan(
    'process shipping',
    {
      kind: SpanKind.CONSUMER,
      links: [{ context: item.producer }],
      attributes: {
        'messaging.system': 'kafka',
        'messaging.destination.name': 'shipping',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
      },
    },
    parent,
  );
  span.end();
}

function stock(sku, done) {
  http
    .get({ host: '127.0.0.1', port, path: `/stock/${sku}` }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => done(null, JSON.parse(body)));
    })
    .on('error', done);
}

function upstream(path, res) {
  const base = new URL(process.env.UPSTREAM);
  http
    .get({ host: base.hostname, port: base.port, path }, (up) => {
      let body = '';
      up.on('data', (c) => (body += c));
      up.on('end', () => {
        res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] || 'text/plain' });
        res.end(body);
      });
    })
    .on('error', (err) => json(res, 502, { error: String(err) }));
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  let m;
  if (url.pathname === '/health') {
    return json(res, 200, { ok: true });
  }
  if ((m = url.pathname.match(/^\/stock\/([\w-]+)$/))) {
    setRoute('/stock/{sku}');
    return json(res, 200, { sku: m[1], available: 7 });
  }
  if ((m = url.pathname.match(/^\/orders\/(\d+)$/))) {
    setRoute('/orders/{id}');
    const id = Number(m[1]);
    return stock('sku-42', (err, s) => {
      if (err) return json(res, 502, { error: String(err) });
      query('SELECT id, sku FROM orders WHERE id = ?', 'orders');
      // Deliberately one query per line: the N+1 the suite catches.
      for (let line = 0; line < 2; line++) {
        query('SELECT name FROM items WHERE order_id = ? AND line = ?', 'items');
      }
      publish({ order: id });
      json(res, 200, { id, available: s.available });
    });
  }
  if ((m = url.pathname.match(/^\/proxy\/orders\/(\d+)$/)) && process.env.UPSTREAM) {
    setRoute('/proxy/orders/{id}');
    return upstream(`/orders/${m[1]}`, res);
  }
  if (url.pathname === '/fail') {
    setRoute('/fail');
    const span = trace.getActiveSpan();
    if (span) {
      span.recordException(new Error('card declined'));
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
    }
    return json(res, 500, { error: 'card declined' });
  }
  json(res, 404, { error: 'not found' });
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));

function stop() {
  server.close();
  sdk.shutdown().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
