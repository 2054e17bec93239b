//! The HTTP endpoints: task endpoints under `/v1` taking an image body, and the Open Inference
//! Protocol's health and metadata endpoints under `/v2`.
//!
//! Pre- and post-processing are `exemplar_inference`'s, the same code `train eval` scores with.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use exemplar_inference::card::TaskSpec;
use exemplar_inference::{detection, landmarks, rle, segmentation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::predict::{run, size_of};
use crate::registry::{Model, Registry};
use crate::telemetry::ServedBy;
use crate::upload::Upload;

pub type AppState = Arc<Registry>;

/// A model's answer, with the model's name for the access log.
pub type Served = (Extension<ServedBy>, Json<Value>);

fn served(model: &Model, answer: Value) -> Served {
    (Extension(ServedBy(model.name.clone())), Json(answer))
}

#[derive(Debug, Deserialize)]
pub struct Params {
    /// The model to use; optional when exactly one model serves the task.
    model: Option<String>,
    /// `png` (default) or `rle`, for segmentation masks.
    format: Option<String>,
    /// Classes to return from classification (default 5).
    top_k: Option<usize>,
    /// Detections scoring below this are dropped (default: the model card's threshold).
    score_threshold: Option<f32>,
}

/// The model named by `?model=` or the form's `model` field, which must solve `task`; with no
/// name, the only model loaded for `task`.
fn pick<'a>(
    registry: &'a Registry,
    task: &str,
    params: &Params,
    upload: &Upload,
) -> Result<&'a Model, ApiError> {
    let name = match (&params.model, &upload.model) {
        (Some(query), Some(form)) if query != form => {
            return Err(ApiError::bad_request(format!(
                "the query names model '{query}' and the form names '{form}': name one"
            )));
        }
        (Some(name), _) | (None, Some(name)) => Some(name),
        (None, None) => None,
    };
    match name {
        Some(name) => {
            let model = registry
                .models
                .get(name)
                .ok_or_else(|| ApiError::not_found(format!("no model named '{name}'")))?;
            if model.card.task.name() != task {
                return Err(ApiError::bad_request(format!(
                    "model '{name}' is a {} model, not {task}",
                    model.card.task.name()
                )));
            }
            Ok(model)
        }
        None => {
            let mut fitting = registry
                .models
                .values()
                .filter(|m| m.card.task.name() == task);
            match (fitting.next(), fitting.next()) {
                (Some(model), None) => Ok(model),
                (None, _) => Err(ApiError::not_found(format!("no {task} model is loaded"))),
                (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                    "several {task} models are loaded: choose one with ?model=NAME"
                ))),
            }
        }
    }
}

pub async fn detect(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served, ApiError> {
    let model = pick(&registry, "detection", &params, &upload)?;
    let TaskSpec::Detection(decoding) = &model.card.task else {
        unreachable!("pick checked the task");
    };
    let mut decoding = *decoding;
    if let Some(threshold) = params.score_threshold {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(ApiError::bad_request(format!(
                "score_threshold must be between 0 and 1, not {threshold}"
            )));
        }
        decoding.score_threshold = threshold;
    }
    let (image, output) = run(model, upload).await?;
    let classes = model.card.class_names.len();
    let [w, h] = size_of(&image);
    let (input_w, input_h) = (
        model.card.input.width as f32,
        model.card.input.height as f32,
    );
    let detections = detection::decode(
        &output.values,
        classes,
        [output.shape[1], output.shape[2]],
        &decoding,
        [w / input_w, h / input_h],
        [w, h],
    );
    let detections: Vec<Value> = detections
        .iter()
        .map(|d| {
            let [x0, y0, x1, y1] = d.bbox;
            json!({
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": d.score,
                "class_id": d.class,
                "class_name": model.card.class_names[d.class],
            })
        })
        .collect();
    Ok(served(
        model,
        json!({
            "model": model.name,
            "width": image.width,
            "height": image.height,
            "detections": detections,
        }),
    ))
}

pub async fn segment(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served, ApiError> {
    let model = pick(&registry, "segmentation", &params, &upload)?;
    let format = params.format.as_deref().unwrap_or("png");
    if format != "png" && format != "rle" {
        return Err(ApiError::bad_request(format!(
            "unknown mask format '{format}' (png or rle)"
        )));
    }
    let (image, output) = run(model, upload).await?;
    let classes = output.shape[0];
    let predicted =
        segmentation::argmax(&output.values, classes, [output.shape[1], output.shape[2]]);
    let mask = segmentation::resize_nearest(
        &predicted,
        [output.shape[2], output.shape[1]],
        [image.width, image.height],
    );
    let mut answer = json!({
        "model": model.name,
        "width": image.width,
        "height": image.height,
        "classes": model.card.class_names,
    });
    if format == "png" {
        let png = segmentation::to_png(&mask, [image.width, image.height]);
        answer["mask"] = json!({
            "format": "png",
            "data": base64::engine::general_purpose::STANDARD.encode(png),
        });
    } else {
        let present: Vec<Value> = (0..classes)
            .filter(|&c| mask.contains(&(c as u8)))
            .map(|c| {
                let encoded = rle::encode(image.width, image.height, |i| mask[i] == c as u8);
                json!({
                    "class_id": c,
                    "class_name": model.card.class_names[c],
                    "rle": {"size": encoded.size, "counts": rle::to_string(&encoded.counts)},
                })
            })
            .collect();
        answer["masks"] = json!(present);
    }
    Ok(served(model, answer))
}

pub async fn landmarks(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served, ApiError> {
    let model = pick(&registry, "landmarks", &params, &upload)?;
    let (image, output) = run(model, upload).await?;
    let points = landmarks::denormalize(&output.values, size_of(&image));
    let named: Vec<Value> = points
        .iter()
        .zip(&model.card.class_names)
        .map(|([x, y], name)| json!({"name": name, "x": x, "y": y}))
        .collect();
    Ok(served(
        model,
        json!({
            "model": model.name,
            "width": image.width,
            "height": image.height,
            "points": named,
        }),
    ))
}

pub async fn embed(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served, ApiError> {
    let model = pick(&registry, "embedding", &params, &upload)?;
    let (_, output) = run(model, upload).await?;
    Ok(served(
        model,
        json!({
            "model": model.name,
            "dim": output.values.len(),
            "embedding": output.values,
        }),
    ))
}

pub async fn classify(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served, ApiError> {
    let model = pick(&registry, "classification", &params, &upload)?;
    let top_k = params.top_k.unwrap_or(5).max(1);
    let (_, output) = run(model, upload).await?;
    let max = output
        .values
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = output.values.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut ranked: Vec<(usize, f32)> = exps.iter().map(|e| e / sum).enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<Value> = ranked
        .iter()
        .take(top_k)
        .map(|&(c, p)| json!({"class_id": c, "class_name": model.card.class_names[c], "score": p}))
        .collect();
    Ok(served(model, json!({"model": model.name, "top": top})))
}

pub async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

pub async fn ready(State(registry): State<AppState>) -> Json<Value> {
    Json(json!({"ready": !registry.models.is_empty()}))
}

pub async fn model_metadata(
    State(registry): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
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

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(registry): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        registry.metrics.render(),
    )
}

/// Records every routed request's status and latency.
pub async fn record(
    State(registry): State<AppState>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    registry
        .metrics
        .request(&endpoint, response.status().as_u16(), started.elapsed());
    response
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
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Served, ApiError> {
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

/// Gives error answers produced outside the handlers (body limit, timeout, overload, axum's
/// rejections of a malformed query) the same `{"error": ...}` form as the handlers' own. A
/// rejection's own text ("Failed to deserialize query string: …") is kept as the reason.
pub async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if status.as_u16() < 400 || content_type.starts_with(b"application/json") {
        return response;
    }
    let text = if content_type.starts_with(b"text/plain") {
        axum::body::to_bytes(response.into_body(), 4096)
            .await
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .filter(|text| !text.is_empty())
    } else {
        None
    };
    let reason = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts (--max-body-bytes)".to_string()
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request took longer than the server allows (--timeout-s)".to_string()
        }
        other => text.unwrap_or_else(|| {
            other
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string()
        }),
    };
    axum::response::IntoResponse::into_response(ApiError::new(status, reason))
}
