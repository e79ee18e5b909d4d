//! A small multi-service shop instrumented with OpenTelemetry: the system tbt's example suites test.
//!
//! One binary, one subcommand per service: `shop gateway|orders|payments|inventory|broker|shipping`,
//! plus `shop order` (a command-line client that places the order it reads as JSON on stdin,
//! continuing the trace of its `TRACEPARENT` environment variable). Without an argument the
//! subcommand comes from `SHOP_SERVICE`, so one command line starts every service. Every service
//! listens on 127.0.0.1 at a fixed offset from `SHOP_PORT_BASE` (default 18080):
//!
//! | offset | service |
//! |---|---|
//! | +0 | gateway (HTTP, the public API) |
//! | +1 | orders (HTTP) |
//! | +2 | payments (HTTP) |
//! | +3 | inventory (HTTP) |
//! | +4 | inventory (gRPC, `shop.Inventory/Lookup`) |
//! | +5 | broker (the message queue, TCP) |
//!
//! Spans are exported over OTLP as the standard `OTEL_*` environment variables say.

mod broker;
mod db;
mod gateway;
mod inventory;
mod orders;
mod payments;
mod shipping;
mod telemetry;

use std::net::SocketAddr;
use std::process::ExitCode;

/// Where the services listen.
#[derive(Clone, Copy)]
pub struct Ports {
    base: u16,
}

impl Ports {
    fn from_env() -> Result<Ports, String> {
        let base = match std::env::var("SHOP_PORT_BASE") {
            Ok(v) => v
                .parse::<u16>()
                .ok()
                .filter(|b| *b > 0 && *b <= u16::MAX - 5)
                .ok_or_else(|| format!("SHOP_PORT_BASE must be a port number, found `{v}`"))?,
            Err(_) => 18080,
        };
        Ok(Ports { base })
    }

    fn addr(self, offset: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + offset))
    }

    /// The gateway's address.
    pub fn gateway(self) -> SocketAddr {
        self.addr(0)
    }
    /// The orders service's address.
    pub fn orders(self) -> SocketAddr {
        self.addr(1)
    }
    /// The payments service's address.
    pub fn payments(self) -> SocketAddr {
        self.addr(2)
    }
    /// The inventory service's HTTP address.
    pub fn inventory(self) -> SocketAddr {
        self.addr(3)
    }
    /// The inventory service's gRPC address.
    pub fn inventory_grpc(self) -> SocketAddr {
        self.addr(4)
    }
    /// The message broker's address.
    pub fn broker(self) -> SocketAddr {
        self.addr(5)
    }
}

const USAGE: &str = "usage: shop gateway|orders|payments|inventory|broker|shipping\n       \
     shop order < ORDER.json   (POST /orders through the gateway; TRACEPARENT is propagated)\n\
     Without an argument, the command comes from SHOP_SERVICE.";

fn main() -> ExitCode {
    let Some(command) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SHOP_SERVICE").ok())
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let command = command.as_str();
    // reqwest (the HTTP client, and the OTLP/HTTP exporter's) uses rustls without a default
    // crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ports = match Ports::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("shop: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shop: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            "gateway" => serve(command, gateway::run(ports)).await,
            "orders" => serve(command, orders::run(ports)).await,
            "payments" => serve(command, payments::run(ports)).await,
            "inventory" => serve(command, inventory::run(ports)).await,
            "broker" => broker::run(ports).await,
            "shipping" => serve(command, shipping::run(ports)).await,
            "order" => gateway::place_order(ports).await,
            _ => Err(format!("unknown command `{command}`\n{USAGE}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an instrumented service until SIGTERM or Ctrl-C, then flushes its spans.
async fn serve<F>(name: &str, service: F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>>,
{
    let provider = telemetry::init(name)?;
    let result = tokio::select! {
        r = service => r,
        () = stopped() => Ok(()),
    };
    telemetry::shutdown(provider).await;
    result
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Binds an HTTP listener and serves `app` on it (the route `/health` answers the readiness probe).
async fn listen(name: &str, addr: SocketAddr, app: axum::Router) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    eprintln!("{name} listening on http://{addr}");
    let app = app.route("/health", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("{name}: {e}"))
}
