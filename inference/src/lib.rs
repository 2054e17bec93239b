//! What it means to run an exemplar model, written once for training, evaluation and serving.
//!
//! - [`card`]: the model card, the JSON contract between `train`, `export` and `serve` (task,
//!   classes, input size, normalisation, outputs and how to decode them).
//! - [`decode`]: bounded, strict decoding of untrusted JPEG, PNG and WebP bytes to 8-bit RGB in
//!   the frame they are displayed in ([`orientation`]: EXIF orientation; JPEGs optionally
//!   downscaled in the DCT domain).
//! - [`image`]: the RGB image type and the network-input preprocessing (resize + normalise), from
//!   an [`Image`] or straight from 8-bit pixels.
//! - [`input`]: a model's input values in the datatype its graph takes (FP32, FP16 or UINT8).
//! - [`classification`], [`detection`], [`segmentation`], [`landmarks`], [`embedding`]: one
//!   module per task, turning raw network outputs into ranked classes, boxes, masks and points
//!   in the original image's pixels, and answering as the server does ([`served`]: the
//!   [`served::ServedTask`] each implements); [`rle`]: COCO run-length encoding.
//! - `runtime` (feature `runtime`): finding and loading the ONNX Runtime library.
//!
//! This crate does not link burn: the server uses it without the training stack, and evaluation
//! in `train` calls the very same functions, so the numbers `train eval` reports are the numbers
//! the server produces.

pub mod card;
pub mod classification;
pub mod decode;
pub mod detection;
pub mod embedding;
pub mod image;
pub mod input;
pub mod landmarks;
pub mod orientation;
pub mod rle;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod segmentation;
pub mod served;

pub use card::{CardError, InputDatatype, ModelCard, Normalization, TaskSpec};
pub use image::Image;
pub use input::InputValues;
