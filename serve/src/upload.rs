//! The image a task endpoint receives: either the raw bytes of the body (`image/*`,
//! `application/octet-stream`, curl's default `application/x-www-form-urlencoded`, or no content
//! type), or one part of a `multipart/form-data` form, as browsers and `curl -F` send it. JSON and
//! text bodies are refused with 415.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;

use crate::error::ApiError;

/// The form field that carries the image; a form without it may carry exactly one file instead.
const IMAGE_FIELD: &str = "image";
/// The optional form field naming the model, the same as `?model=`.
const MODEL_FIELD: &str = "model";

/// An uploaded image, with the model named in the form if there was one.
#[derive(Debug)]
pub struct Upload {
    pub image: Bytes,
    pub model: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
        match content_type.as_deref() {
            Some(t) if t.starts_with("multipart/form-data") => {
                let form = Multipart::from_request(request, state)
                    .await
                    .map_err(|e| ApiError::bad_request(format!("bad multipart form: {e}")))?;
                from_form(form).await
            }
            // JSON and text are certainly not images: say so rather than fail to decode them.
            Some(t) if t.starts_with("application/json") || t.starts_with("text/") => {
                Err(ApiError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "content type '{t}' is not an image: send image bytes (image/png, image/jpeg) or a multipart form with an '{IMAGE_FIELD}' file"
                    ),
                ))
            }
            // Anything else is taken as the image's bytes: `curl --data-binary @x.png` labels
            // them application/x-www-form-urlencoded unless told otherwise.
            _ => raw(request, state).await,
        }
    }
}

async fn raw<S: Send + Sync>(request: Request, state: &S) -> Result<Upload, ApiError> {
    let image = Bytes::from_request(request, state)
        .await
        .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    Ok(Upload { image, model: None })
}

/// Reads the form: the `image` field (or the only file), and an optional `model` field.
async fn from_form(mut form: Multipart) -> Result<Upload, ApiError> {
    let mut named = None;
    let mut files = Vec::new();
    let mut model = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::new(e.status(), format!("bad multipart form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or("").to_string();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| {
            ApiError::new(e.status(), format!("bad multipart form: {}", e.body_text()))
        })?;
        if name == IMAGE_FIELD {
            named = Some(bytes);
        } else if name == MODEL_FIELD {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::bad_request("the 'model' form field is not UTF-8 text"))?;
            model = Some(text.trim().to_string());
        } else if is_file {
            files.push(bytes);
        }
    }
    let image = match (named, files.len()) {
        (Some(image), _) => image,
        (None, 1) => files.remove(0),
        (None, 0) => {
            return Err(ApiError::bad_request(format!(
                "the multipart form has no '{IMAGE_FIELD}' field"
            )));
        }
        (None, _) => {
            return Err(ApiError::bad_request(format!(
                "the multipart form has several files and no '{IMAGE_FIELD}' field: name the image field '{IMAGE_FIELD}'"
            )));
        }
    };
    Ok(Upload { image, model })
}
