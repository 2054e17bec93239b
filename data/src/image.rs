//! Images in the data pipeline: the shared [`Image`] type and decoding of files.

use std::path::Path;

pub use exemplar_inference::image::{Image, MAX_ALLOC_BYTES, MAX_DIMENSION, decode_bytes};

use super::DataError;

/// Decodes an image file (PNG or JPEG, detected from its content) with dimension and
/// allocation limits.
pub fn decode_file(path: &Path) -> Result<Image, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_bytes(&bytes).map_err(|reason| DataError::BadImage {
        path: path.to_path_buf(),
        reason,
    })
}
