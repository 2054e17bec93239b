//! What every `/v1` route shares in its OpenAPI description: the multipart form it accepts and
//! the error statuses it can answer. The answers' own types are the tasks' (`exemplar_inference`).

use utoipa::ToSchema;

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
