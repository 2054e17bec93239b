//! The Open Inference Protocol (KServe v2) endpoints under `/v2`: health, server and model
//! metadata, and inference on raw FP32 tensors.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{AppState, Served, served};
use crate::error::ApiError;

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

pub async fn model_metadata(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let name = path.checked()?;
    let model = registry
        .models
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no model named '{name}'")))?;
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
    let name = path.checked()?;
    if !registry.models.contains_key(&name) {
        return Err(ApiError::not_found(format!("no model named '{name}'")));
    }
    Ok(Json(json!({"name": name, "ready": true})))
}

pub async fn server_metadata(State(registry): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": "exemplar-serve",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [],
        "models": registry.models.keys().collect::<Vec<_>>(),
        "device": registry.device,
    }))
}

/// An Open Inference Protocol tensor.
#[derive(Debug, Deserialize)]
pub struct InferTensor {
    name: String,
    shape: Vec<usize>,
    datatype: String,
    /// Flat or nested numbers, in row-major order.
    data: Value,
}

#[derive(Debug, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    inputs: Vec<InferTensor>,
}

/// Row-major numbers of an OIP `data` field, flat or nested.
fn flatten(data: &Value, out: &mut Vec<f32>) -> Result<(), ApiError> {
    match data {
        Value::Number(n) => {
            out.push(
                n.as_f64()
                    .ok_or_else(|| ApiError::bad_request("data holds a number out of range"))?
                    as f32,
            );
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| flatten(item, out)),
        other => Err(ApiError::bad_request(format!(
            "data must hold numbers, found {other}"
        ))),
    }
}

/// `POST /v2/models/{name}/infer`: the network on raw tensors (no pre- or post-processing), as
/// the Open Inference Protocol defines it. The batch's images go to the model's worker
/// together, so they share batches with other requests.
pub async fn infer(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
    body: axum::body::Bytes,
) -> Result<Served, ApiError> {
    let name = path.checked()?;
    let model = registry
        .models
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no model named '{name}'")))?;
    let request: InferRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not an inference request: {e}")))?;
    let [input] = request.inputs.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "expected exactly one input tensor, got {}",
            request.inputs.len()
        )));
    };
    let card = &model.card;
    if input.name != card.input.name {
        return Err(ApiError::bad_request(format!(
            "unknown input '{}' (the model's input is '{}')",
            input.name, card.input.name
        )));
    }
    if input.datatype != "FP32" {
        return Err(ApiError::bad_request(format!(
            "datatype {} is not supported (FP32)",
            input.datatype
        )));
    }
    let image = [3, card.input.height, card.input.width];
    if input.shape.len() != 4 || input.shape[1..] != image || input.shape[0] == 0 {
        return Err(ApiError::bad_request(format!(
            "shape {:?} does not fit the model's input [batch, {}, {}, {}]",
            input.shape, image[0], image[1], image[2]
        )));
    }
    let mut values = Vec::new();
    flatten(&input.data, &mut values)?;
    let per_image = image.iter().product::<usize>();
    if values.len() != input.shape[0] * per_image {
        return Err(ApiError::bad_request(format!(
            "data holds {} numbers, the shape {:?} needs {}",
            values.len(),
            input.shape,
            input.shape[0] * per_image
        )));
    }
    let mut pending = Vec::with_capacity(input.shape[0]);
    for chunk in values.chunks_exact(per_image) {
        let submitted = model
            .worker
            .submit(chunk.to_vec())
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        pending.push(submitted);
    }
    let mut data = Vec::new();
    let mut item_shape = Vec::new();
    for p in pending {
        let output = p
            .wait()
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("inference failed: {e}"),
                )
            })?;
        item_shape = output.shape;
        data.extend(output.values);
    }
    let mut shape = vec![input.shape[0]];
    shape.extend(item_shape);
    let output_name = card.outputs.first().map_or("output", |o| o.name.as_str());
    let mut answer = json!({
        "model_name": model.name,
        "model_version": "1",
        "outputs": [{"name": output_name, "datatype": "FP32", "shape": shape, "data": data}],
    });
    if let Some(id) = &request.id {
        answer["id"] = json!(id);
    }
    Ok(served(model, answer))
}
