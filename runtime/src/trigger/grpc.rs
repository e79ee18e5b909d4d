//! The gRPC trigger: a unary call whose messages are built at run time from `.proto` files.
//!
//! Why it exists: test authors should not need `protoc` or generated code. protox compiles the
//! `.proto` files in-process (cached per set of files for the run), prost-reflect turns the JSON
//! message into a `DynamicMessage`, and a small [`Codec`] lets tonic send and receive those.
//!
//! What it must not do: treat a gRPC error status as a trigger failure — a server answering
//! NOT_FOUND is an answer the test may expect. Only transport problems (refused, timed out,
//! undecodable) are [`TriggerError`]s. Streaming methods are refused, not half-supported.

use super::{
    Cause, GrpcResponse, GrpcSpec, Response, TraceContext, TriggerError, TriggerOutcome, find_cause,
};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use std::collections::HashMap;
use std::error::Error as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{
    AsciiMetadataKey, AsciiMetadataValue, BinaryMetadataKey, BinaryMetadataValue, KeyAndValueRef,
    MetadataMap,
};
use tonic::transport::{ClientTlsConfig, Endpoint};

type ProtoKey = (Vec<PathBuf>, Vec<PathBuf>);

/// Compiled descriptor pools by (proto files, import paths), so a suite's many calls compile
/// their `.proto` files once.
#[derive(Default)]
pub(super) struct Protos {
    pools: Mutex<HashMap<ProtoKey, Arc<DescriptorPool>>>,
}

impl Protos {
    fn pool(&self, spec: &GrpcSpec) -> Result<Arc<DescriptorPool>, TriggerError> {
        let key = (spec.proto_files.clone(), spec.import_paths.clone());
        if let Some(pool) = self.lock().get(&key) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(compile(spec)?);
        self.lock().entry(key).or_insert(pool.clone());
        Ok(pool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProtoKey, Arc<DescriptorPool>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn compile(spec: &GrpcSpec) -> Result<DescriptorPool, TriggerError> {
    let files = spec
        .proto_files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let proto_error = |reason: String| TriggerError::Proto {
        files: files.clone(),
        reason,
    };
    if spec.proto_files.is_empty() {
        return Err(proto_error(
            "no .proto file given: say `proto \"file.proto\"`".to_owned(),
        ));
    }
    let includes: Vec<PathBuf> = if spec.import_paths.is_empty() {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for file in &spec.proto_files {
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    } else {
        spec.import_paths.clone()
    };
    let mut compiler = protox::Compiler::new(includes).map_err(|e| proto_error(e.to_string()))?;
    compiler.include_imports(true);
    compiler
        .open_files(&spec.proto_files)
        .map_err(|e| proto_error(e.to_string()))?;
    Ok(compiler.descriptor_pool())
}

fn find_method(pool: &DescriptorPool, method: &str) -> Result<MethodDescriptor, TriggerError> {
    let unknown = |reason: String| TriggerError::UnknownMethod {
        method: method.to_owned(),
        reason,
    };
    let (service_name, method_name) = method
        .trim_start_matches('/')
        .rsplit_once('/')
        .ok_or_else(|| unknown("write it as `package.Service/Method`".to_owned()))?;
    let Some(service) = pool.get_service_by_name(service_name) else {
        let services: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
        return Err(unknown(if services.is_empty() {
            "the .proto files define no service".to_owned()
        } else {
            format!(
                "no service `{service_name}`; the .proto files define {}",
                services.join(", ")
            )
        }));
    };
    let Some(found) = service.methods().find(|m| m.name() == method_name) else {
        let methods: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
        return Err(unknown(format!(
            "service `{service_name}` has no method `{method_name}`; it has {}",
            methods.join(", ")
        )));
    };
    if found.is_client_streaming() || found.is_server_streaming() {
        return Err(unknown(format!(
            "`{method_name}` is a streaming method; only unary calls are supported"
        )));
    }
    Ok(found)
}

/// Encodes and decodes [`DynamicMessage`]s of one response type, for `tonic::client::Grpc`.
#[derive(Clone)]
struct DynamicCodec {
    response: MessageDescriptor,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            response: self.response.clone(),
        }
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("could not encode the request: {e}")))
    }
}

struct DynamicDecoder {
    response: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        // With a source set, `fire` reports this as an invalid response, not as a gRPC status.
        DynamicMessage::decode(self.response.clone(), src)
            .map(Some)
            .map_err(|e| Status::from_error(Box::new(e)))
    }
}

fn insert_metadata(map: &mut MetadataMap, name: &str, value: &str) -> Result<(), TriggerError> {
    let invalid = || TriggerError::InvalidHeader {
        name: name.to_owned(),
    };
    let lower = name.to_ascii_lowercase();
    if lower.ends_with("-bin") {
        let key = BinaryMetadataKey::from_bytes(lower.as_bytes()).map_err(|_| invalid())?;
        map.append_bin(key, BinaryMetadataValue::from_bytes(value.as_bytes()));
    } else {
        let key = AsciiMetadataKey::from_bytes(lower.as_bytes()).map_err(|_| invalid())?;
        let value = AsciiMetadataValue::try_from(value).map_err(|_| invalid())?;
        map.append(key, value);
    }
    Ok(())
}

fn metadata_pairs(map: &MetadataMap) -> Vec<(String, String)> {
    map.iter()
        .map(|entry| match entry {
            KeyAndValueRef::Ascii(k, v) => (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_encoded_bytes()).into_owned(),
            ),
            KeyAndValueRef::Binary(k, v) => (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_encoded_bytes()).into_owned(),
            ),
        })
        .collect()
}

fn authority(address: &str) -> String {
    address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned()
}

/// Turns a transport-level error into the trigger error it stands for.
fn classify(e: &(dyn std::error::Error + 'static), spec: &GrpcSpec, address: &str) -> TriggerError {
    match find_cause(e) {
        Cause::Refused => TriggerError::ConnectionRefused {
            address: address.to_owned(),
        },
        Cause::Tls(reason) => TriggerError::Tls {
            address: address.to_owned(),
            reason,
        },
        Cause::Timeout => timed_out(spec, address),
        Cause::Other(reason) => TriggerError::Protocol {
            address: address.to_owned(),
            reason,
        },
    }
}

fn timed_out(spec: &GrpcSpec, address: &str) -> TriggerError {
    TriggerError::TimedOut {
        after: spec.timeout,
        target: format!("{} at {}", spec.method, address),
    }
}

fn to_json(message: &DynamicMessage) -> serde_json::Value {
    let options = SerializeOptions::new().skip_default_fields(false);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or(serde_json::Value::Null)
}

pub(super) async fn fire(
    protos: &Protos,
    spec: &GrpcSpec,
    ctx: &TraceContext,
) -> Result<TriggerOutcome, TriggerError> {
    let pool = protos.pool(spec)?;
    let method = find_method(&pool, &spec.method)?;
    let request_type = method.input();
    let message =
        DynamicMessage::deserialize(request_type.clone(), spec.message.clone()).map_err(|e| {
            TriggerError::InvalidMessage {
                method: spec.method.clone(),
                message_type: request_type.full_name().to_owned(),
                reason: e.to_string(),
            }
        })?;
    let address = authority(&spec.address);
    let invalid_url = |reason: String| TriggerError::InvalidUrl {
        url: spec.address.clone(),
        reason,
    };
    if !(spec.address.starts_with("http://") || spec.address.starts_with("https://")) {
        return Err(invalid_url(
            "a gRPC address starts with http:// or https://".to_owned(),
        ));
    }
    let mut endpoint =
        Endpoint::from_shared(spec.address.clone()).map_err(|e| invalid_url(e.to_string()))?;
    if spec.address.starts_with("https://") {
        crate::tls::install_crypto_provider();
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| TriggerError::Tls {
                address: address.clone(),
                reason: e.to_string(),
            })?;
    }
    let mut request = tonic::Request::new(message);
    request.set_timeout(spec.timeout);
    for (name, value) in &spec.metadata {
        insert_metadata(request.metadata_mut(), name, value)?;
    }
    // Ours replace any the test wrote: the trace must be the one tbt waits for.
    for (name, value) in [
        ("traceparent", ctx.traceparent()),
        ("tracestate", ctx.tracestate()),
    ] {
        request.metadata_mut().remove(name);
        insert_metadata(request.metadata_mut(), name, &value)?;
    }
    let path = PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))
    .map_err(|_| TriggerError::UnknownMethod {
        method: spec.method.clone(),
        reason: "the name cannot be used in a request path".to_owned(),
    })?;
    let codec = DynamicCodec {
        response: method.output(),
    };

    let started = SystemTime::now();
    let clock = Instant::now();
    let call = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| classify(&e, spec, &address))?;
        let mut client = tonic::client::Grpc::new(channel);
        client
            .ready()
            .await
            .map_err(|e| classify(&e, spec, &address))?;
        match client.unary(request, path, codec).await {
            Ok(response) => Ok(GrpcResponse {
                status: 0,
                status_message: String::new(),
                metadata: metadata_pairs(response.metadata()),
                message: to_json(response.get_ref()),
            }),
            Err(status) if status.source().is_some() => Err(classify(&status, spec, &address)),
            Err(status) => Ok(GrpcResponse {
                status: status.code() as i32,
                status_message: status.message().to_owned(),
                metadata: metadata_pairs(status.metadata()),
                message: serde_json::Value::Null,
            }),
        }
    };
    let response = tokio::time::timeout(spec.timeout, call)
        .await
        .map_err(|_| timed_out(spec, &address))??;
    Ok(TriggerOutcome {
        started,
        duration: clock.elapsed(),
        response: Response::Grpc(response),
    })
}
