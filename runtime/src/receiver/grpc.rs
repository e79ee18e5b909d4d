//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` served by tonic.
//!
//! Why it exists: gRPC is the default protocol of most OpenTelemetry SDKs. tonic does the HTTP/2,
//! framing, gzip decompression and the decompressed-size limit; this module adds the bearer-token
//! check (an interceptor, so unauthenticated bodies are never decoded) and maps export results to
//! OTLP responses (partial success when spans are rejected). The service is written by hand rather
//! than generated so that the request arrives as raw bytes: the store validates and splits them
//! without decoding (see `store::wire`), which is what makes the ingest rate.
//!
//! What it must not do: log the token, or fail a whole request because some spans are invalid.
//!
//! Status codes: a missing or wrong token is `UNAUTHENTICATED`; an undecodable message
//! `INVALID_ARGUMENT` with the reason; a message over the limit, before or after gzip
//! decompression, `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE` for the former; we rewrite it).

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::codegen::http;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::{NamedService, UnaryService};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::Auth;
use crate::store::{IngestStats, TraceStore};

/// The gRPC path of the OTLP trace export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

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

/// `opentelemetry.proto.collector.trace.v1.TraceService` writing into a [`TraceStore`]. A tower
/// service for tonic's router; requests are handled as raw bytes.
#[derive(Clone, Debug)]
pub struct GrpcTraceService {
    store: TraceStore,
    max_request_bytes: usize,
}

impl GrpcTraceService {
    /// A service writing into `store`, refusing messages over `max_request_bytes` (decompressed).
    pub fn new(store: TraceStore, max_request_bytes: usize) -> Self {
        GrpcTraceService {
            store,
            max_request_bytes,
        }
    }
}

impl NamedService for GrpcTraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

struct Export(TraceStore);

impl UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<ExportTraceServiceResponse>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let store = self.0.clone();
        Box::pin(async move {
            let stats = store.ingest_encoded(request.get_ref()).map_err(|error| {
                Status::invalid_argument(format!("invalid OTLP protobuf: {}", error.0))
            })?;
            Ok(Response::new(export_response(stats)))
        })
    }
}

impl Service<http::Request<Body>> for GrpcTraceService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async {
                Ok(Status::unimplemented("only TraceService/Export is served").into_http())
            });
        }
        let store = self.store.clone();
        let max = self.max_request_bytes;
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(RawRequestCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            let response = grpc.unary(Export(store), request).await;
            // tonic answers OUT_OF_RANGE for an uncompressed message over the limit (and
            // RESOURCE_EXHAUSTED when decompression overflows it); OTLP receivers answer both with
            // RESOURCE_EXHAUSTED. tonic keeps the `Status` of such an answer in the extensions.
            let too_large = response
                .extensions()
                .get::<Status>()
                .filter(|status| status.code() == tonic::Code::OutOfRange)
                .map(|status| status.message().to_owned());
            Ok(match too_large {
                Some(message) => Status::resource_exhausted(message).into_http(),
                None => response,
            })
        })
    }
}

/// Hands the request message over as bytes and encodes the response with prost.
#[derive(Clone, Copy, Debug, Default)]
struct RawRequestCodec;

#[derive(Clone, Copy, Debug, Default)]
struct RawDecoder;

impl Codec for RawRequestCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

pub(super) async fn serve(
    listener: TcpListener,
    store: TraceStore,
    auth: Auth,
    max_request_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let service = GrpcTraceService::new(store, max_request_bytes);
    let service = InterceptedService::new(service, move |request: Request<()>| {
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        if auth.allows(authorization) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    });
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|error| error.to_string())
}
