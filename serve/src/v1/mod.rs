//! The task endpoints under `/v1`: an image in (the body, or a multipart form's `image`), the
//! decoded result out, in the image's pixels. Pre- and post-processing are `exemplar_inference`'s,
//! the same code `train eval` scores with.

pub mod answers;

use axum::extract::{Query, State};
use base64::Engine;
use exemplar_inference::card::TaskSpec;
use exemplar_inference::{classification, detection, landmarks, rle, segmentation};
use serde::Deserialize;

use crate::api::{AppState, Served, served};
use crate::error::ApiError;
use crate::predict::{run, size_of};
use crate::registry::{Model, Registry};
use crate::upload::Upload;
use answers::*;

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

#[utoipa::path(
    post,
    path = "/v1/detect",
    summary = "Detection: COCO-style boxes [x, y, w, h] with scores and class names",
    params(("model" = Option<String>, Query, description = "a detection model; optional when only one is loaded"),
        ("score_threshold" = Option<f32>, Query, minimum = 0, maximum = 1, description = "drop detections scoring below this (default: the model card's threshold)")),
    request_body(
        description = "the image: its bytes as the body, or a multipart form",
        content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
    ),
    responses((status = 200, description = "the result, in the submitted image's pixels", body = DetectAnswer), TaskErrors),
    tag = "tasks"
)]
pub async fn detect(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served<DetectAnswer>, ApiError> {
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
    let detections = detections
        .iter()
        .map(|d| {
            let [x0, y0, x1, y1] = d.bbox;
            Detection {
                bbox: [x0, y0, x1 - x0, y1 - y0],
                score: d.score,
                class_id: d.class,
                class_name: model.card.class_names[d.class].clone(),
            }
        })
        .collect();
    let answer = DetectAnswer {
        model: model.name.clone(),
        width: image.width,
        height: image.height,
        detections,
    };
    Ok(served(model, answer))
}

#[utoipa::path(
    post,
    path = "/v1/segment",
    summary = "Semantic segmentation: a PNG of class indices (or per-class COCO RLE with format=rle)",
    params(("model" = Option<String>, Query, description = "a segmentation model; optional when only one is loaded"),
        ("format" = Option<String>, Query, description = "png (default): one PNG of class indices; rle: COCO RLE per class present")),
    request_body(
        description = "the image: its bytes as the body, or a multipart form",
        content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
    ),
    responses((status = 200, description = "the result, in the submitted image's pixels", body = SegmentAnswer), TaskErrors),
    tag = "tasks"
)]
pub async fn segment(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served<SegmentAnswer>, ApiError> {
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
    let mut answer = SegmentAnswer {
        model: model.name.clone(),
        width: image.width,
        height: image.height,
        classes: model.card.class_names.clone(),
        mask: None,
        masks: None,
    };
    if format == "png" {
        let png = segmentation::to_png(&mask, [image.width, image.height]);
        answer.mask = Some(PngMask {
            format: "png",
            data: base64::engine::general_purpose::STANDARD.encode(png),
        });
    } else {
        let present = (0..classes)
            .filter(|&c| mask.contains(&(c as u8)))
            .map(|c| {
                let encoded = rle::encode(image.width, image.height, |i| mask[i] == c as u8);
                ClassMask {
                    class_id: c,
                    class_name: model.card.class_names[c].clone(),
                    rle: Rle {
                        size: encoded.size,
                        counts: rle::to_string(&encoded.counts),
                    },
                }
            })
            .collect();
        answer.masks = Some(present);
    }
    Ok(served(model, answer))
}

#[utoipa::path(
    post,
    path = "/v1/landmarks",
    summary = "Facial landmarks: named (x, y) points",
    params(("model" = Option<String>, Query, description = "a landmarks model; optional when only one is loaded")),
    request_body(
        description = "the image: its bytes as the body, or a multipart form",
        content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
    ),
    responses((status = 200, description = "the result, in the submitted image's pixels", body = LandmarksAnswer), TaskErrors),
    tag = "tasks"
)]
pub async fn landmarks(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served<LandmarksAnswer>, ApiError> {
    let model = pick(&registry, "landmarks", &params, &upload)?;
    let (image, output) = run(model, upload).await?;
    let points = landmarks::denormalize(&output.values, size_of(&image));
    let points = points
        .iter()
        .zip(&model.card.class_names)
        .map(|(&[x, y], name)| Point {
            name: name.clone(),
            x,
            y,
        })
        .collect();
    let answer = LandmarksAnswer {
        model: model.name.clone(),
        width: image.width,
        height: image.height,
        points,
    };
    Ok(served(model, answer))
}

#[utoipa::path(
    post,
    path = "/v1/embed",
    summary = "Embedding: pooled backbone features",
    params(("model" = Option<String>, Query, description = "a embedding model; optional when only one is loaded")),
    request_body(
        description = "the image: its bytes as the body, or a multipart form",
        content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
    ),
    responses((status = 200, description = "the result, in the submitted image's pixels", body = EmbedAnswer), TaskErrors),
    tag = "tasks"
)]
pub async fn embed(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served<EmbedAnswer>, ApiError> {
    let model = pick(&registry, "embedding", &params, &upload)?;
    let (_, output) = run(model, upload).await?;
    let answer = EmbedAnswer {
        model: model.name.clone(),
        dim: output.values.len(),
        embedding: output.values,
    };
    Ok(served(model, answer))
}

#[utoipa::path(
    post,
    path = "/v1/classify",
    summary = "Classification: the top-k classes with softmax scores",
    params(("model" = Option<String>, Query, description = "a classification model; optional when only one is loaded"),
        ("top_k" = Option<usize>, Query, minimum = 1, description = "classes to return (default 5)")),
    request_body(
        description = "the image: its bytes as the body, or a multipart form",
        content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
    ),
    responses((status = 200, description = "the result, in the submitted image's pixels", body = ClassifyAnswer), TaskErrors),
    tag = "tasks"
)]
pub async fn classify(
    State(registry): State<AppState>,
    Query(params): Query<Params>,
    upload: Upload,
) -> Result<Served<ClassifyAnswer>, ApiError> {
    let model = pick(&registry, "classification", &params, &upload)?;
    let top_k = params.top_k.unwrap_or(5).max(1);
    let (_, output) = run(model, upload).await?;
    let top = classification::top_k(&output.values, top_k)
        .iter()
        .map(|&(c, p)| ClassScore {
            class_id: c,
            class_name: model.card.class_names[c].clone(),
            score: p,
        })
        .collect();
    let answer = ClassifyAnswer {
        model: model.name.clone(),
        top,
    };
    Ok(served(model, answer))
}
