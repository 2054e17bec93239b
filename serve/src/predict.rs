//! One image through one model: decode the upload for the model's input size, queue it on the
//! model's worker, and map what can go wrong to HTTP statuses. The task endpoints in `v1` turn
//! the raw output into their answers.

use axum::http::StatusCode;
use exemplar_inference::InputValues;
use exemplar_inference::decode::{DecodeLimits, decode_for};

use crate::error::ApiError;
use crate::registry::Model;
use crate::runtime::Output;
use crate::upload::Upload;
use crate::worker::SubmitError;

/// Decodes the body, runs the model on it and returns the picture's `[width, height]` with the
/// model's output (its output tensors joined along the channels, as decoding reads them). A JPEG much larger than the network input is decoded downscaled (DCT domain) and
/// resized in 8 bits: no full-size `f32` copy is made.
pub async fn run(model: &Model, upload: Upload) -> Result<([usize; 2], Output), ApiError> {
    let body = upload.image;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: send the image bytes (JPEG, PNG or WebP)",
        ));
    }
    let input = model.card.input.clone();
    let size = model.input_size();
    let (original, pixels) = tokio::task::spawn_blocking(move || {
        let decoded = decode_for(&body, Some(size), DecodeLimits::default())?;
        let pixels = InputValues::preprocess(&decoded.pixels, &input);
        Ok::<_, exemplar_inference::decode::DecodeError>((decoded.original, pixels))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|reason| ApiError::bad_request(format!("unreadable image: {reason}")))?;
    let output = model
        .worker
        .infer(pixels)
        .await
        .map_err(|e| match e {
            SubmitError::Full => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            SubmitError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        })?
        .and_then(|outputs| Output::join(outputs).map_err(|e| e.to_string()))
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inference failed: {e}"),
            )
        })?;
    Ok((original, output))
}
