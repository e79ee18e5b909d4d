//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` served by tonic.
//!
//! Why it exists: gRPC is the default protocol of most OpenTelemetry SDKs. tonic does the HTTP/2,
//! framing, gzip decompression and the decompressed-size limit; this module adds the bearer-token
//! check (an interceptor, so unauthenticated bodies are never decoded) and maps export results to
//! OTLP responses (partial success when spans are rejected).
//!
//! What it must not do: log the token, or fail a whole request because some spans are invalid.
//!
//! Status codes: a missing or wrong token is `UNAUTHENTICATED`; an undecodable message
//! `INVALID_ARGUMENT` (tonic answers `INTERNAL` for decode errors, which exporters would retry;
//! [`DecodeErrorIsInvalidArgument`] rewrites that answer); a message over the limit after gzip
//! decompression `RESOURCE_EXHAUSTED`. tonic reports an *uncompressed* message over the limit as
//! `OUT_OF_RANGE` before reading it; both mean "too large" to an exporter and neither is retried.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::Auth;
use crate::store::{IngestStats, TraceStore};

/// The `TraceService` implementation writing into a [`TraceStore`].
#[derive(Clone, Debug)]
pub struct GrpcTraceService {
    store: TraceStore,
}

impl GrpcTraceService {
    /// A service writing into `store`.
    pub fn new(store: TraceStore) -> Self {
        GrpcTraceService { store }
    }
}

#[tonic::async_trait]
impl TraceService for GrpcTraceService {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let stats = self.store.ingest(request.into_inner());
        Ok(Response::new(export_response(stats)))
    }
}

/// The OTLP response for an ingest: empty on full success, `partial_success` when spans were
/// rejected.
pub(crate) fn export_response(stats: IngestStats) -> ExportTraceServiceResponse {
    if stats.rejected_spans == 0 {
        return ExportTraceServiceResponse::default();
    }
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: i64::try_from(stats.rejected_spans).unwrap_or(i64::MAX),
            error_message: stats.rejection.unwrap_or_default(),
        }),
    }
}

pub(super) async fn serve(
    listener: TcpListener,
    store: TraceStore,
    auth: Auth,
    max_request_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let service = TraceServiceServer::new(GrpcTraceService::new(store))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes);
    let service = InterceptedService::new(
        DecodeErrorIsInvalidArgument(service),
        move |request: Request<()>| {
            let authorization = request
                .metadata()
                .get("authorization")
                .map(|value| value.as_bytes());
            if auth.allows(authorization) {
                Ok(request)
            } else {
                Err(Status::unauthenticated("missing or wrong bearer token"))
            }
        },
    );
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|error| error.to_string())
}

/// Wraps the tonic service so that an undecodable request is answered `INVALID_ARGUMENT` (the
/// OTLP code for "bad data, do not retry") rather than tonic's `INTERNAL`.
#[derive(Clone, Debug)]
struct DecodeErrorIsInvalidArgument<S>(S);

impl<S: NamedService> NamedService for DecodeErrorIsInvalidArgument<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for DecodeErrorIsInvalidArgument<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await?;
            // tonic puts the `Status` of a trailers-only error answer in the extensions.
            let decode_error = response.extensions().get::<Status>().is_some_and(|status| {
                status.code() == tonic::Code::Internal
                    && status.message().starts_with("failed to decode")
            });
            if !decode_error {
                return Ok(response);
            }
            let message = response
                .extensions()
                .get::<Status>()
                .map(|status| status.message().to_owned())
                .unwrap_or_default();
            Ok(Status::invalid_argument(message).into_http())
        })
    }
}
