//! The task endpoints under `/v1`: an image in (the body, or a multipart form's `image`), the
//! decoded result out, in the image's pixels. Pre- and post-processing are `exemplar_inference`'s,
//! the same code `train eval` scores with.

use axum::extract::{Query, State};
use base64::Engine;
use exemplar_inference::card::TaskSpec;
use exemplar_inference::{classification, detection, landmarks, rle, segmentation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{AppState, Served, served};
use crate::error::ApiError;
use crate::predict::{Size, run, size_of};
use crate::registry::{Model, Registry};
use crate::upload::Upload;

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

/// What every answer about an image starts with: the model and the image's size, which the
/// answer's coordinates refer to.
fn about(model: &Model, image: &Size) -> Value {
    json!({"model": model.name, "width": image.width, "height": image.height})
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
    let mut answer = about(model, &image);
    answer["detections"] = json!(detections);
    Ok(served(model, answer))
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
    let mut answer = about(model, &image);
    answer["classes"] = json!(model.card.class_names);
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
    let mut answer = about(model, &image);
    answer["points"] = json!(named);
    Ok(served(model, answer))
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
    let top: Vec<Value> = classification::top_k(&output.values, top_k)
        .iter()
        .map(|&(c, p)| json!({"class_id": c, "class_name": model.card.class_names[c], "score": p}))
        .collect();
    Ok(served(model, json!({"model": model.name, "top": top})))
}
