//! The Open Inference Protocol (KServe v2) endpoints under `/v2`: health, server and model
//! metadata here, inference on raw FP32 tensors in [`infer`], the request and answer bodies
//! (JSON, or JSON followed by binary tensor data) in [`tensor`].

pub mod infer;
mod tensor;

pub use infer::infer;
pub use tensor::HEADER_LENGTH;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::error::ApiError;
use crate::registry::Model;

/// The protocol extensions this server speaks, as server metadata lists them.
pub const EXTENSIONS: &[&str] = &[tensor::BINARY_TENSOR_DATA];

pub async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

pub async fn ready(State(registry): State<AppState>) -> Json<Value> {
    Json(json!({"ready": !registry.models.is_empty()}))
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

pub async fn model_metadata(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let model = model(&registry, path)?;
    let card = &model.card;
    Ok(Json(json!({
        "name": model.name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{
            "name": card.input.name,
            "datatype": "FP32",
            "shape": [-1, 3, card.input.height, card.input.width],
        }],
        "outputs": card.outputs.iter().map(|o| json!({
            "name": o.name,
            "datatype": "FP32",
            "shape": o.shape.iter().map(|d| d.parse::<i64>().unwrap_or(-1)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "card": card,
    })))
}

pub async fn model_ready(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let model = model(&registry, path)?;
    Ok(Json(json!({"name": model.name, "ready": true})))
}

pub async fn server_metadata(State(registry): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": "exemplar-serve",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": EXTENSIONS,
        "models": registry.models.keys().collect::<Vec<_>>(),
        "device": registry.device,
    }))
}
