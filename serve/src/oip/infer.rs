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
use crate::api::AppState;
use crate::error::ApiError;
use crate::telemetry::ServedBy;

pub async fn infer(
    State(registry): State<AppState>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(Extension<ServedBy>, Response), ApiError> {
    let model = model(&registry, path)?;
    let (request, binary) = tensor::parse(&headers, &body)?;
    let card = &model.card;
    let [input] = request.inputs.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "expected exactly one input tensor ('{}'), got {}",
            card.input.name,
            request.inputs.len()
        )));
    };
    if input.name != card.input.name {
        return Err(ApiError::bad_request(format!(
            "unknown input '{}' (the model's input is '{}')",
            input.name, card.input.name
        )));
    }
    let image = [3, card.input.height, card.input.width];
    if input.shape.len() != 4 || input.shape[1..] != image || input.shape[0] == 0 {
        return Err(ApiError::bad_request(format!(
            "shape {:?} does not fit the model's input [batch, {}, {}, {}]",
            input.shape, image[0], image[1], image[2]
        )));
    }
    let output_name = card.outputs.first().map_or("output", |o| o.name.as_str());
    let requested = tensor::requested_outputs(&request, &[output_name])?;
    let values = tensor::input_values(&request, &binary)?;
    let per_image = image.iter().product::<usize>();
    let mut pending = Vec::with_capacity(input.shape[0]);
    for chunk in values[0].chunks_exact(per_image) {
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
    // The models have one output tensor: it is returned unless the request lists no outputs.
    let outputs = requested
        .into_iter()
        .take(1)
        .map(|(_, as_binary)| {
            let tensor = OutputTensor {
                name: output_name.to_string(),
                shape: shape.clone(),
                values: std::mem::take(&mut data),
            };
            (tensor, as_binary)
        })
        .collect();
    let answer = tensor::answer(&model.name, request.id.as_deref(), outputs);
    Ok((Extension(ServedBy(model.name.clone())), answer))
}
