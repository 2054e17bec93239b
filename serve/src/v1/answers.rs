//! The task endpoints' answers, as types: what they serialise to is what `/openapi.json`
//! describes (utoipa derives the schemas from these).

use serde::Serialize;
use utoipa::ToSchema;

/// One detected object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Detection {
    /// `[x, y, width, height]` in the submitted image's pixels (COCO style).
    pub bbox: [f32; 4],
    pub score: f32,
    pub class_id: usize,
    pub class_name: String,
}

/// `POST /v1/detect`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectAnswer {
    pub model: String,
    /// The submitted image's size, which the boxes refer to.
    pub width: usize,
    pub height: usize,
    pub detections: Vec<Detection>,
}

/// A PNG of class indices, one byte per pixel.
#[derive(Debug, Serialize, ToSchema)]
pub struct PngMask {
    /// Always `png`.
    pub format: &'static str,
    /// The PNG file, base64-encoded.
    pub data: String,
}

/// COCO run-length encoding of one class's pixels (column-major counts).
#[derive(Debug, Serialize, ToSchema)]
pub struct Rle {
    /// `[height, width]`.
    pub size: [usize; 2],
    pub counts: String,
}

/// One class present in the mask, as COCO RLE.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassMask {
    pub class_id: usize,
    pub class_name: String,
    pub rle: Rle,
}

/// `POST /v1/segment`: `mask` by default, `masks` with `format=rle`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentAnswer {
    pub model: String,
    pub width: usize,
    pub height: usize,
    /// Class names, indexed by the mask's values.
    pub classes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<PngMask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masks: Option<Vec<ClassMask>>,
}

/// One named landmark, in the submitted image's pixels.
#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    pub name: String,
    pub x: f32,
    pub y: f32,
}

/// `POST /v1/landmarks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LandmarksAnswer {
    pub model: String,
    pub width: usize,
    pub height: usize,
    pub points: Vec<Point>,
}

/// `POST /v1/embed`: the pooled backbone features (L2-normalise them for cosine similarity).
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedAnswer {
    pub model: String,
    pub dim: usize,
    pub embedding: Vec<f32>,
}

/// One class and its softmax score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassScore {
    pub class_id: usize,
    pub class_name: String,
    pub score: f32,
}

/// `POST /v1/classify`: the top classes, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyAnswer {
    pub model: String,
    pub top: Vec<ClassScore>,
}

/// An image upload as a multipart form.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ImageForm {
    /// The image file (JPEG, PNG or WebP).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    pub image: Vec<u8>,
    /// The same as `?model=`.
    pub model: Option<String>,
}

/// The error answers every task endpoint can give.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum TaskErrors {
    /// an unreadable image, a bad parameter or a model of another task
    #[response(status = 400)]
    BadRequest(crate::error::ErrorBody),
    /// no such model, or none for this task
    #[response(status = 404)]
    NotFound(crate::error::ErrorBody),
    /// the body is larger than --max-body-bytes
    #[response(status = 413)]
    TooLarge(crate::error::ErrorBody),
    /// neither an image nor a multipart form
    #[response(status = 415)]
    Unsupported(crate::error::ErrorBody),
    /// the model's queue or the server is full
    #[response(status = 503)]
    Unavailable(crate::error::ErrorBody),
}
