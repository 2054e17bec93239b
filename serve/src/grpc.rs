//! The Open Inference Protocol over gRPC (`--grpc-addr`): KServe's `GRPCInferenceService`
//! (proto/grpc_predict_v2.proto) with the standard gRPC health service beside it. Inference
//! shares the HTTP route's checks and its path to the model's worker (`oip::infer`); errors map
//! to gRPC codes in `error.rs`. Tensors come as `raw_input_contents` (what Triton's clients send)
//! or as typed `contents`; outputs go back as `raw_output_contents`, as Triton answers.

use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use exemplar_inference::input::InputError;
use exemplar_inference::{InputDatatype, InputValues};

use crate::access::{ApiKey, RateLimit};
use crate::api::AppState;
use crate::error::ApiError;
use crate::oip::infer::{check_input, one_input, output_names, run_batch};
use crate::oip::{EXTENSIONS, ModelPath, model, output_index};

#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use proto::model_infer_response::InferOutputTensor;
use proto::model_metadata_response::TensorMetadata;
use proto::*;

pub struct Service {
    registry: AppState,
}

type Answer<T> = Result<Response<T>, Status>;

fn model_of(
    registry: &AppState,
    name: String,
    version: String,
) -> Result<&crate::registry::Model, Status> {
    let version = (!version.is_empty()).then_some(version);
    Ok(model(registry, ModelPath::new(name, version))?)
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Answer<ServerLiveResponse> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Answer<ServerReadyResponse> {
        let ready = !self.registry.models.is_empty();
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(&self, request: Request<ModelReadyRequest>) -> Answer<ModelReadyResponse> {
        let ModelReadyRequest { name, version } = request.into_inner();
        model_of(&self.registry, name, version)?;
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Answer<ServerMetadataResponse> {
        Ok(Response::new(ServerMetadataResponse {
            name: "exemplar-serve".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: EXTENSIONS.iter().map(|e| e.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Answer<ModelMetadataResponse> {
        let ModelMetadataRequest { name, version } = request.into_inner();
        let model = model_of(&self.registry, name, version)?;
        let proto = |tensors: &[crate::registry::TensorMetadata]| {
            tensors
                .iter()
                .map(|t| TensorMetadata {
                    name: t.name.clone(),
                    datatype: t.datatype.into(),
                    shape: t.shape.clone(),
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: model.name.clone(),
            versions: vec!["1".into()],
            platform: model.platform.into(),
            inputs: proto(&model.tensors.inputs),
            outputs: proto(&model.tensors.outputs),
        }))
    }

    async fn model_infer(&self, request: Request<ModelInferRequest>) -> Answer<ModelInferResponse> {
        let request = request.into_inner();
        let model = model_of(&self.registry, request.model_name, request.model_version)?;
        let input = one_input(model, &request.inputs)?;
        let names = output_names(model);
        // Every output unless the request names some, in the order it names them.
        let wanted = request
            .outputs
            .iter()
            .map(|o| output_index(&names, &o.name))
            .collect::<Result<Vec<usize>, _>>()?;
        let wanted = if wanted.is_empty() {
            (0..names.len()).collect()
        } else {
            wanted
        };
        let shape: Vec<usize> = input
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ApiError::bad_request(format!("shape {:?} has a negative size", input.shape))
            })?;
        check_input(model, &input.name, &shape, &input.datatype)?;
        let count = shape.iter().product::<usize>();
        let values = input_values(
            input,
            model.input.datatype,
            &request.raw_input_contents,
            count,
        )?;
        let computed = run_batch(model, &values).await?;
        let mut outputs = Vec::with_capacity(wanted.len());
        let mut raw_output_contents = Vec::with_capacity(wanted.len());
        for index in wanted {
            let Some((shape, values)) = computed.get(index) else {
                return Err(Status::internal(format!(
                    "the model returned {} outputs, its card lists {}",
                    computed.len(),
                    names.len()
                )));
            };
            outputs.push(InferOutputTensor {
                name: names[index].to_string(),
                datatype: "FP32".into(),
                shape: shape.iter().map(|&d| d as i64).collect(),
                parameters: Default::default(),
                contents: None,
            });
            raw_output_contents.push(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
        Ok(Response::new(ModelInferResponse {
            model_name: model.name.clone(),
            model_version: "1".into(),
            id: request.id,
            parameters: Default::default(),
            outputs,
            raw_output_contents,
        }))
    }

    async fn repository_model_load(
        &self,
        _: Request<RepositoryModelLoadRequest>,
    ) -> Answer<RepositoryModelLoadResponse> {
        Err(Status::unimplemented(
            "models are loaded at start-up from --models; restart to change them",
        ))
    }

    async fn repository_model_unload(
        &self,
        _: Request<RepositoryModelUnloadRequest>,
    ) -> Answer<RepositoryModelUnloadResponse> {
        Err(Status::unimplemented(
            "models are loaded at start-up from --models; restart to change them",
        ))
    }
}

/// The input's `count` values of `datatype`: its raw bytes (little-endian) or its typed
/// contents (`fp32_contents` for FP32, `uint_contents` for UINT8; FP16 has no typed field in
/// the protocol and comes raw).
fn input_values(
    input: &model_infer_request::InferInputTensor,
    datatype: InputDatatype,
    raw: &[Vec<u8>],
    count: usize,
) -> Result<InputValues, ApiError> {
    let invalid = |e: InputError| ApiError::bad_request(format!("input '{}': {e}", input.name));
    let typed: Option<Vec<f64>> = input.contents.as_ref().and_then(|c| match datatype {
        InputDatatype::Fp32 => Some(c.fp32_contents.iter().map(|&v| v as f64).collect()),
        InputDatatype::Uint8 => Some(c.uint_contents.iter().map(|&v| v as f64).collect()),
        InputDatatype::Fp16 => None,
    });
    match (raw, typed) {
        ([bytes], None) => InputValues::from_le_bytes(datatype, bytes, count).map_err(|e| {
            ApiError::bad_request(format!("input '{}': raw contents of {e}", input.name))
        }),
        ([], Some(values)) if values.len() == count => {
            InputValues::from_numbers(datatype, &values).map_err(invalid)
        }
        ([], Some(values)) => Err(ApiError::bad_request(format!(
            "input '{}': contents hold {} values, the shape needs {count}",
            input.name,
            values.len()
        ))),
        _ => Err(ApiError::bad_request(format!(
            "input '{}' needs its data either as one raw_input_contents entry or as {}",
            input.name,
            match datatype {
                InputDatatype::Fp32 => "fp32_contents",
                InputDatatype::Uint8 => "uint_contents",
                InputDatatype::Fp16 => "nothing else (FP16 has no typed contents)",
            }
        ))),
    }
}

/// Who may call the gRPC service, how often, and with how large a request: the HTTP side's
/// API key, per-client rate (one allowance across both protocols) and body limit, and its TLS
/// certificate.
pub struct Guard {
    pub api_key: Option<ApiKey>,
    pub rate: Option<RateLimit>,
    pub max_message_bytes: usize,
    pub tls: Option<tonic::transport::Identity>,
}

/// The gRPC service and gRPC health, ready to serve. Health answers every caller; inference
/// and metadata calls pass `guard` first: over the rate they get RESOURCE_EXHAUSTED with
/// `retry-after` metadata, without the key UNAUTHENTICATED, and a request over the size limit
/// OUT_OF_RANGE. Fails if the TLS certificate or key cannot be used.
pub async fn router(
    registry: AppState,
    guard: Guard,
) -> Result<tonic::transport::server::Router, tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<GrpcInferenceServiceServer<Service>>()
        .await;
    let Guard {
        api_key,
        rate,
        max_message_bytes,
        tls,
    } = guard;
    let service = GrpcInferenceServiceServer::new(Service { registry })
        .max_decoding_message_size(max_message_bytes);
    let inference = InterceptedService::new(service, move |request: Request<()>| {
        if let (Some(rate), Some(peer)) = (&rate, request.remote_addr())
            && let Err((seconds, message)) = rate.check(peer.ip())
        {
            let mut status = Status::resource_exhausted(message);
            status
                .metadata_mut()
                .insert("retry-after", seconds.to_string().parse().expect("digits"));
            return Err(status);
        }
        let given = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        match &api_key {
            Some(key) if !key.admits_bytes(given) => Err(Status::unauthenticated(
                "this server needs an API key: send authorization: Bearer <key>",
            )),
            _ => Ok(request),
        }
    });
    let mut server = tonic::transport::Server::builder().trace_fn(|request| {
        let method = request.uri().path().trim_start_matches('/');
        crate::telemetry::server_span(method, request.headers())
    });
    if let Some(identity) = tls {
        server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    Ok(server.add_service(health_service).add_service(inference))
}
