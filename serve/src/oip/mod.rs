//! The Open Inference Protocol (KServe v2) endpoints under `/v2`: health, server and model
//! metadata here, inference on raw FP32 tensors in [`infer`], the request and answer bodies
//! (JSON, or JSON followed by binary tensor data) in [`tensor`].

pub mod infer;
mod tensor;

pub use infer::infer;
pub use tensor::{HEADER_LENGTH, output_index};

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::registry::{Model, TensorMetadata};

/// The protocol extensions this server speaks, as server metadata lists them.
pub const EXTENSIONS: &[&str] = &[tensor::BINARY_TENSOR_DATA];

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    pub live: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelReady {
    pub name: String,
    pub ready: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    pub name: &'static str,
    pub version: &'static str,
    /// The protocol extensions spoken: `binary_tensor_data`.
    pub extensions: Vec<&'static str>,
    pub models: Vec<String>,
    /// Where the models run: `CPU` or `CUDA:N`.
    pub device: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<&'static str>,
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
    /// The model card `export` wrote (model.json): task, classes, input size and normalisation,
    /// outputs, provenance.
    #[schema(value_type = Object)]
    pub card: exemplar_inference::ModelCard,
    /// The task route that answers with this model (`/v1/detect`, …), beside the protocol's own
    /// `/infer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'static str>,
}

#[utoipa::path(get, path = "/v2/health/live", summary = "Liveness", responses((status = 200, description = "the server is live", body = Live)), tag = "oip")]
pub async fn live() -> Json<Live> {
    Json(Live { live: true })
}

#[utoipa::path(get, path = "/v2/health/ready", summary = "Readiness: whether models are loaded", responses((status = 200, description = "whether it can answer", body = Ready)), tag = "oip")]
pub async fn ready(State(registry): State<AppState>) -> Json<Ready> {
    Json(Ready {
        ready: !registry.models.is_empty(),
    })
}

/// `{name}` of a model route, and `{version}` on the `/versions/{version}/…` form of it. Every
/// model has the one version `1`.
#[derive(Debug, Deserialize)]
pub struct ModelPath {
    name: String,
    version: Option<String>,
}

impl ModelPath {
    pub fn new(name: String, version: Option<String>) -> Self {
        Self { name, version }
    }

    /// The model's name, if the version named (if any) is one it has.
    fn checked(self) -> Result<String, ApiError> {
        match self.version {
            Some(version) if version != "1" => Err(ApiError::not_found(format!(
                "model '{}' has no version '{version}' (its only version is 1)",
                self.name
            ))),
            _ => Ok(self.name),
        }
    }
}

/// The model a route names, at a version it has.
pub fn model(registry: &AppState, path: ModelPath) -> Result<&Model, ApiError> {
    let name = path.checked()?;
    registry
        .models
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no model named '{name}'")))
}

#[utoipa::path(
    get,
    path = "/v2/models/{name}",
    summary = "Model metadata, with the model card",
    params(("name" = String, Path, description = "a loaded model")),
    responses((status = 200, description = "the model's tensors and card", body = ModelMetadata), (status = 404, description = "no such model or version", body = ErrorBody)),
    tag = "oip"
)]
pub async fn model_metadata(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
) -> Result<Json<ModelMetadata>, ApiError> {
    let model = model(&registry, path)?;
    Ok(Json(ModelMetadata {
        name: model.name.clone(),
        versions: vec!["1"],
        platform: model.platform,
        inputs: model.tensors.inputs.clone(),
        outputs: model.tensors.outputs.clone(),
        card: model.card.clone(),
        route: crate::v1::path_of(model.card.task.name()),
    }))
}

#[utoipa::path(
    get,
    path = "/v2/models/{name}/ready",
    summary = "Model readiness",
    params(("name" = String, Path, description = "a loaded model")),
    responses((status = 200, description = "the model is ready", body = ModelReady), (status = 404, description = "no such model or version", body = ErrorBody)),
    tag = "oip"
)]
pub async fn model_ready(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
) -> Result<Json<ModelReady>, ApiError> {
    let model = model(&registry, path)?;
    Ok(Json(ModelReady {
        name: model.name.clone(),
        ready: true,
    }))
}

#[utoipa::path(get, path = "/v2", summary = "Open Inference Protocol server metadata", responses((status = 200, description = "the server, its extensions and models", body = ServerMetadata)), tag = "oip")]
pub async fn server_metadata(State(registry): State<AppState>) -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "exemplar-serve",
        version: env!("CARGO_PKG_VERSION"),
        extensions: EXTENSIONS.to_vec(),
        models: registry.models.keys().cloned().collect(),
        device: registry.device.clone(),
    })
}
