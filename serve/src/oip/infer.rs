//! `POST /v2/models/{name}[/versions/{version}]/infer`: the network on raw tensors (no pre- or
//! post-processing), as the Open Inference Protocol defines it, in JSON or with binary tensor
//! data. The batch's images go to the model's worker one by one, so they share batches with
//! other requests.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::tensor::{self, OutputTensor};
use super::{ModelPath, model};
use exemplar_inference::InputValues;

use crate::api::AppState;
use crate::error::ApiError;
use crate::registry::Model;
use crate::telemetry::ServedBy;

#[utoipa::path(
    post,
    path = "/v2/models/{name}/infer",
    summary = "Open Inference Protocol inference on raw tensors (no pre- or post-processing)",
    description = "The input in the model's datatype (its metadata says which: FP32 or FP16 normalised pixels, or UINT8 pixels 0-255 that the model normalises), as JSON, or with the binary tensor data extension: a JSON header of Inference-Header-Content-Length bytes followed by the tensors' little-endian bytes. Outputs are FP32.",
    params(
        ("name" = String, Path, description = "a loaded model"),
        ("Inference-Header-Content-Length" = Option<usize>, Header, description = "bytes of the JSON header when binary tensor data follows it"),
    ),
    request_body(content((super::tensor::InferRequest = "application/json"), ("application/octet-stream"))),
    responses(
        (status = 200, description = "output tensors: JSON, or a JSON header (its length in Inference-Header-Content-Length) and binary data",
         content((super::tensor::InferAnswer = "application/json"), ("application/octet-stream"))),
        (status = 400, description = "a body that is not a fitting inference request", body = crate::error::ErrorBody),
        (status = 404, description = "no such model or version", body = crate::error::ErrorBody),
        (status = 415, description = "a compressed body", body = crate::error::ErrorBody),
    ),
    tag = "oip"
)]
pub async fn infer(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(Extension<ServedBy>, Response), ApiError> {
    let model = model(&registry, path)?;
    let (request, binary) = tensor::parse(&headers, &body)?;
    let input = one_input(model, &request.inputs)?;
    let names = output_names(model);
    let requested = tensor::requested_outputs(&request, &names)?;
    check_input(model, &input.name, &input.shape, &input.datatype)?;
    let values = tensor::input_values(&request, &binary)?;
    let mut computed: Vec<Option<(Vec<usize>, Vec<f32>)>> = run_batch(model, &values[0])
        .await?
        .into_iter()
        .map(Some)
        .collect();
    // Every output unless the request lists some; each one once.
    let outputs = requested
        .into_iter()
        .filter_map(|(index, as_binary)| {
            let (shape, values) = computed.get_mut(index)?.take()?;
            let name = names[index].to_string();
            Some((
                OutputTensor {
                    name,
                    shape,
                    values,
                },
                as_binary,
            ))
        })
        .collect();
    let answer = tensor::answer(&model.name, request.id.as_deref(), outputs);
    Ok((Extension(ServedBy(model.name.clone())), answer))
}

/// The names of the model's output tensors, in the graph's order (the card lists them so).
pub fn output_names(model: &Model) -> Vec<&str> {
    model.card.outputs.iter().map(|o| o.name.as_str()).collect()
}

/// The request's one input tensor: the models take exactly one.
pub fn one_input<'a, T>(model: &Model, inputs: &'a [T]) -> Result<&'a T, ApiError> {
    match inputs {
        [input] => Ok(input),
        _ => Err(ApiError::bad_request(format!(
            "expected exactly one input tensor ('{}'), got {}",
            model.input.name,
            inputs.len()
        ))),
    }
}

/// Checks a request's one input tensor against the model's: name, datatype (the card's, exactly,
/// as Triton checks it) and `[batch, 3, height, width]` shape.
pub fn check_input(
    model: &Model,
    name: &str,
    shape: &[usize],
    datatype: &str,
) -> Result<(), ApiError> {
    let input = &model.input;
    if name != input.name {
        return Err(ApiError::bad_request(format!(
            "unknown input '{name}' (the model's input is '{}')",
            input.name
        )));
    }
    let takes = input.datatype.name();
    if datatype != takes {
        return Err(ApiError::bad_request(format!(
            "input '{name}': datatype {datatype} is not supported (the model takes {takes})"
        )));
    }
    let image = input.dims;
    if shape.len() != 4 || shape[1..] != image || shape[0] == 0 {
        return Err(ApiError::bad_request(format!(
            "shape {shape:?} does not fit the model's input [batch, {}, {}, {}]",
            image[0], image[1], image[2]
        )));
    }
    Ok(())
}

/// Runs a checked input's images (`[batch, 3, height, width]` values) through the model's
/// worker one by one, so that they share batches with other requests; each output tensor's
/// shape (batch first) and values, in the graph's order.
pub async fn run_batch(
    model: &Model,
    values: &InputValues,
) -> Result<Vec<(Vec<usize>, Vec<f32>)>, ApiError> {
    let images = values.chunks(model.input.per_image());
    let mut pending = Vec::with_capacity(images.len());
    for image in images {
        let submitted = model
            .worker
            .submit(image)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        pending.push(submitted);
    }
    let batch = pending.len();
    let mut tensors: Vec<(Vec<usize>, Vec<f32>)> = Vec::new();
    for p in pending {
        let outputs = p
            .wait()
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("inference failed: {e}"),
                )
            })?;
        if tensors.is_empty() {
            tensors = outputs
                .iter()
                .map(|o| {
                    let mut shape = vec![batch];
                    shape.extend(&o.shape);
                    (shape, Vec::with_capacity(batch * o.values.len()))
                })
                .collect();
        }
        for ((_, data), output) in tensors.iter_mut().zip(outputs) {
            data.extend(output.values);
        }
    }
    Ok(tensors)
}
