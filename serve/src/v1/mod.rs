//! The task endpoints under `/v1`: an image in (the body, or a multipart form's `image`), the
//! decoded result out, in the image's pixels. Pre- and post-processing are `exemplar_inference`'s,
//! the same code `train eval` scores with.
//!
//! Every route is the same skeleton ([`answer`]): pick the model, check the query, run the
//! image, turn the output into the answer. What differs is each task's
//! [`ServedTask`], in its own module of `exemplar_inference`; [`task_routes!`] registers them,
//! one line each, with their handlers, routes and OpenAPI descriptions.

mod forms;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use exemplar_inference::classification::{Classify, ClassifyAnswer, ClassifyQuery};
use exemplar_inference::detection::{Detect, DetectAnswer, DetectQuery};
use exemplar_inference::embedding::{Embed, EmbedAnswer};
use exemplar_inference::landmarks::{LandmarksAnswer, Locate};
use exemplar_inference::segmentation::{Segment, SegmentAnswer, SegmentQuery};
use exemplar_inference::served::{NoOptions, ServedTask};
use serde::Deserialize;

use crate::api::{AppState, Served, served};
use crate::error::ApiError;
use crate::predict::run;
use crate::registry::{Model, Registry};
use crate::upload::Upload;
use forms::{ImageForm, TaskErrors};

/// The query option every `/v1` route reads; each task reads its own besides
/// ([`ServedTask::Query`]).
#[derive(Debug, Deserialize)]
pub struct ModelQuery {
    /// The model to use; optional when exactly one model serves the task.
    model: Option<String>,
}

/// The model named by `?model=` or the form's `model` field, which must solve `task`; with no
/// name, the only model loaded for `task`.
fn pick<'a>(
    registry: &'a Registry,
    task: &str,
    query: &ModelQuery,
    upload: &Upload,
) -> Result<&'a Model, ApiError> {
    let name = match (&query.model, &upload.model) {
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

/// The skeleton every `/v1` route runs.
async fn answer<T: ServedTask>(
    registry: &Registry,
    model: ModelQuery,
    query: T::Query,
    upload: Upload,
) -> Result<Served<T::Answer>, ApiError> {
    let model = pick(registry, T::TASK, &model, &upload)?;
    let options = T::options(&model.served(), query)
        .map_err(|refused| ApiError::bad_request(refused.to_string()))?;
    let (image, output) = run(model, upload).await?;
    let answer = T::answer(&model.served(), options, image, output);
    Ok(served(model, answer))
}

/// The `/v1` path of the task that models of card task `task` solve.
pub fn path_of(task: &str) -> Option<&'static str> {
    TASKS
        .iter()
        .find(|(_, name)| *name == task)
        .map(|(path, _)| *path)
}

/// Registers each served task: `handler: Task, its query's type, its answer's type;`. It writes
/// each handler with the OpenAPI description the routes share (the image as the body or a
/// multipart form, the model, the task's own options, the answer or a [`TaskErrors`] status),
/// and from the same list [`routes`], [`TASKS`] and [`Doc`].
macro_rules! task_routes {
    ($($handler:ident: $task:ty, $query:ty, $answer:ty;)+) => {
        $(
            #[utoipa::path(
                post,
                path = <$task as ServedTask>::PATH,
                summary = <$task as ServedTask>::SUMMARY,
                params(
                    ("model" = Option<String>, Query, description = "the model to use; optional when only one model of this task is loaded"),
                    $query
                ),
                request_body(
                    description = "the image: its bytes as the body, or a multipart form",
                    content(("image/png"), ("image/jpeg"), (inline(ImageForm) = "multipart/form-data"))
                ),
                responses((status = 200, description = "the result, in the submitted image's pixels", body = $answer), TaskErrors),
                tag = "tasks"
            )]
            pub async fn $handler(
                State(registry): State<AppState>,
                Query(model): Query<ModelQuery>,
                Query(query): Query<$query>,
                upload: Upload,
            ) -> Result<Served<$answer>, ApiError> {
                answer::<$task>(&registry, model, query, upload).await
            }
        )+

        /// The `/v1` routes.
        pub fn routes() -> Router<AppState> {
            Router::new()$(.route(<$task as ServedTask>::PATH, post($handler)))+
        }

        /// Each route's path and the card task of the models it takes.
        pub const TASKS: &[(&str, &str)] =
            &[$((<$task as ServedTask>::PATH, <$task as ServedTask>::TASK)),+];

        /// The `/v1` routes' OpenAPI description (`openapi` puts it first in the document).
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler),+))]
        pub struct Doc;
    };
}

task_routes! {
    detect: Detect, DetectQuery, DetectAnswer;
    segment: Segment, SegmentQuery, SegmentAnswer;
    landmarks: Locate, NoOptions, LandmarksAnswer;
    embed: Embed, NoOptions, EmbedAnswer;
    classify: Classify, ClassifyQuery, ClassifyAnswer;
}
