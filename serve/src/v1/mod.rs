//! The task endpoints under `/v1`: an image in (the body, or a multipart form's `image`), the
//! decoded result out, in the image's pixels. Pre- and post-processing are `exemplar_inference`'s,
//! the same code `train eval` scores with.
//!
//! Every route is the same skeleton ([`answer`]): pick the model, check the query, run the
//! image, turn the output into the answer. What differs is a [`TaskRoute`] ([`tasks`], one
//! impl per task); [`task_route!`] writes each handler with its OpenAPI description.

pub mod answers;

mod tasks;

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::api::{AppState, Served, served};
use crate::error::ApiError;
use crate::predict::{Size, run};
use crate::registry::{Model, Registry};
use crate::runtime::Output;
use crate::upload::Upload;
use answers::*;
use tasks::{Classify, Detect, Embed, Landmarks, Segment};

/// The query options of the `/v1` routes (each reads its own).
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

/// What one `/v1` route adds to the shared skeleton.
pub trait TaskRoute {
    /// The model card's task name this route serves.
    const TASK: &'static str;
    /// The query's options for this task, checked before the image is decoded.
    type Options;
    type Answer: Serialize;

    fn options(model: &Model, params: &Params) -> Result<Self::Options, ApiError>;

    /// The answer, in the submitted image's pixels, from the model's output (its tensors
    /// joined along the channels).
    fn answer(model: &Model, options: Self::Options, image: Size, output: Output) -> Self::Answer;
}

/// The skeleton every `/v1` route runs.
async fn answer<T: TaskRoute>(
    registry: &Registry,
    params: Params,
    upload: Upload,
) -> Result<Served<T::Answer>, ApiError> {
    let model = pick(registry, T::TASK, &params, &upload)?;
    let options = T::options(model, &params)?;
    let (image, output) = run(model, upload).await?;
    Ok(served(model, T::answer(model, options, image, output)))
}

/// A `/v1` handler for a [`TaskRoute`], with the OpenAPI description the routes share: the
/// image as the body or a multipart form, the model (optional when one serves the task), the
/// answer or a [`TaskErrors`] status. `params(...)` lists the route's own query options.
macro_rules! task_route {
    ($handler:ident, $route:ty, $path:literal, $summary:literal, $answer:ty,
     model = $model_doc:literal $(, $param:tt)*) => {
        #[utoipa::path(
            post,
            path = $path,
            summary = $summary,
            params(("model" = Option<String>, Query, description = $model_doc) $(, $param)*),
            request_body(
                description = "the image: its bytes as the body, or a multipart form",
                content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
            ),
            responses((status = 200, description = "the result, in the submitted image's pixels", body = $answer), TaskErrors),
            tag = "tasks"
        )]
        pub async fn $handler(
            State(registry): State<AppState>,
            Query(params): Query<Params>,
            upload: Upload,
        ) -> Result<Served<$answer>, ApiError> {
            answer::<$route>(&registry, params, upload).await
        }
    };
}

task_route!(
    detect,
    Detect,
    "/v1/detect",
    "Detection: COCO-style boxes [x, y, w, h] with scores and class names",
    DetectAnswer,
    model = "a detection model; optional when only one is loaded",
    ("score_threshold" = Option<f32>, Query, minimum = 0, maximum = 1, description = "drop detections scoring below this (default: the model card's threshold)")
);

task_route!(
    segment,
    Segment,
    "/v1/segment",
    "Semantic segmentation: a PNG of class indices (or per-class COCO RLE with format=rle)",
    SegmentAnswer,
    model = "a segmentation model; optional when only one is loaded",
    ("format" = Option<String>, Query, description = "png (default): one PNG of class indices; rle: COCO RLE per class present")
);

task_route!(
    landmarks,
    Landmarks,
    "/v1/landmarks",
    "Facial landmarks: named (x, y) points",
    LandmarksAnswer,
    model = "a landmarks model; optional when only one is loaded"
);

task_route!(
    embed,
    Embed,
    "/v1/embed",
    "Embedding: pooled backbone features",
    EmbedAnswer,
    model = "a embedding model; optional when only one is loaded"
);

task_route!(
    classify,
    Classify,
    "/v1/classify",
    "Classification: the top-k classes with softmax scores",
    ClassifyAnswer,
    model = "a classification model; optional when only one is loaded",
    ("top_k" = Option<usize>, Query, minimum = 1, description = "classes to return (default 5)")
);
