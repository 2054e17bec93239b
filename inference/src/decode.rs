//! Decoding untrusted image bytes into 8-bit RGB, for training data and the server alike.
//!
//! - **JPEG** goes through libjpeg-turbo (the `mozjpeg` crate builds it from source; the decoder
//!   Pillow uses too). When the caller says what size it needs, the decoder can downscale in the
//!   DCT domain by 1/2, 1/4 or 1/8: it then skips most of the inverse transform, the colour
//!   conversion and the memory of the full-size picture. A photo is never reduced below the size
//!   asked for, so the resize that follows only ever shrinks.
//! - **PNG** and **WebP** go through the `image` crate.
//!
//! Every picture comes back in the frame it is displayed in: an EXIF orientation (how phones
//! store a portrait photo: landscape pixels and a tag saying "turn 90°") is applied before
//! anything else, as browsers and Pillow's `ImageOps.exif_transpose` do. Sizes, boxes and points
//! computed from a [`Decoded`] are therefore in the displayed frame.
//!
//! Data that ends early or whose compressed data is corrupt is an error, not a picture with a
//! grey or smeared part: libjpeg reports those cases as warnings and fills in the rest, so every
//! libjpeg warning is turned into an error here. Sizes are checked against [`DecodeLimits`]
//! from the header, before any pixel memory is allocated.

use std::io::Cursor;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use mozjpeg::Marker;
use mozjpeg_sys::{J_COLOR_SPACE, jpeg_common_struct, jpeg_error_mgr};
use thiserror::Error;

use crate::orientation::{jpeg_orientation, orient, swaps_axes};

/// Largest width or height accepted from a file by default. Generous for photographs, but it
/// stops a decompression bomb (a tiny file claiming 100k × 100k pixels) before it allocates.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest decoder allocation accepted from a file by default.
pub const MAX_ALLOC_BYTES: u64 = 1 << 30;

/// How large a decoded image may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width or height.
    pub max_dimension: u32,
    /// Largest pixel buffer (and, for PNG, largest decoder allocation) in bytes.
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_dimension: MAX_DIMENSION,
            max_alloc_bytes: MAX_ALLOC_BYTES,
        }
    }
}

/// Why bytes are not an image.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("empty data")]
    Empty,
    #[error("not a PNG, JPEG or WebP image")]
    UnknownFormat,
    #[error(
        "the image is {width}×{height}, more than the {limit} pixels a side or the memory accepted"
    )]
    TooLarge { width: u64, height: u64, limit: u32 },
    /// The `image` crate's decoder refused the picture's size or memory.
    #[error("the image is larger than the {limit} pixels a side or the memory accepted")]
    OverLimits {
        limit: u32,
        #[source]
        source: image::error::LimitError,
    },
    #[error("the image has no pixels")]
    NoPixels,
    /// libjpeg's own message, such as "Premature end of JPEG file".
    #[error("corrupt or truncated JPEG: {0}")]
    Jpeg(String),
    /// A PNG or WebP the `image` crate could not decode.
    #[error("corrupt or truncated {format}")]
    Image {
        format: &'static str,
        #[source]
        source: image::ImageError,
    },
}

/// 8-bit RGB pixels, row-major with interleaved channels (HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// A decoded image, turned to its displayed frame, and the size of the picture in that frame
/// (larger than `pixels` when the decoder downscaled it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub pixels: Rgb8,
    /// `[width, height]` of the picture as displayed: the file's size, swapped when its EXIF
    /// orientation turns it by 90°.
    pub original: [usize; 2],
}

/// Decodes `bytes` at full size.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded, DecodeError> {
    decode_for(bytes, None, limits)
}

/// Decodes `bytes`, downscaling a JPEG in the DCT domain as far as it can while keeping at least
/// `target` (`[width, height]`, in the displayed frame) pixels; `None` decodes at full size.
pub fn decode_for(
    bytes: &[u8],
    target: Option<[usize; 2]>,
    limits: DecodeLimits,
) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => decode_jpeg(bytes, target, limits),
        Ok(format @ (ImageFormat::Png | ImageFormat::WebP)) => {
            decode_with_image_crate(bytes, format, limits)
        }
        _ => Err(DecodeError::UnknownFormat),
    }
}

/// The size limits' verdict on a `width × height` picture of `channels` bytes per pixel.
fn check_size(
    width: u64,
    height: u64,
    channels: u64,
    limits: DecodeLimits,
) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::NoPixels);
    }
    let side = u64::from(limits.max_dimension);
    if width > side || height > side || width * height * channels > limits.max_alloc_bytes {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limit: limits.max_dimension,
        });
    }
    Ok(())
}

/// A PNG or WebP through the `image` crate: size checked from the header, then decoded and
/// turned by the file's EXIF orientation (PNG's `eXIf` chunk, WebP's `EXIF` chunk).
fn decode_with_image_crate(
    bytes: &[u8],
    format: ImageFormat,
    limits: DecodeLimits,
) -> Result<Decoded, DecodeError> {
    let name = if format == ImageFormat::Png {
        "PNG"
    } else {
        "WebP"
    };
    let corrupt = |source| DecodeError::Image {
        format: name,
        source,
    };
    let over_limits = |e: image::ImageError| match e {
        image::ImageError::Limits(source) => DecodeError::OverLimits {
            limit: limits.max_dimension,
            source,
        },
        e => corrupt(e),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(over_limits)?;
    let (width, height) = decoder.dimensions();
    check_size(u64::from(width), u64::from(height), 3, limits)?;
    let orientation = decoder.orientation().map_err(corrupt)?;
    let decoded = DynamicImage::from_decoder(decoder).map_err(over_limits)?;
    let pixels = orient(
        Rgb8 {
            width: decoded.width() as usize,
            height: decoded.height() as usize,
            data: decoded.into_rgb8().into_raw(),
        },
        orientation,
    );
    Ok(Decoded {
        original: [pixels.width, pixels.height],
        pixels,
    })
}

/// The DCT scale numerator (of 8) for a `size` picture needing at least `target`: 8, 4, 2 or 1.
fn dct_numerator([width, height]: [usize; 2], target: Option<[usize; 2]>) -> u8 {
    let Some([tw, th]) = target else { return 8 };
    let mut numerator = 8;
    // libjpeg rounds scaled sizes up.
    while numerator > 1 {
        let next = numerator / 2;
        let scaled = |side: usize| (side * next as usize).div_ceil(8);
        if scaled(width) < tw.max(1) || scaled(height) < th.max(1) {
            break;
        }
        numerator = next;
    }
    numerator
}

fn decode_jpeg(
    bytes: &[u8],
    target: Option<[usize; 2]>,
    limits: DecodeLimits,
) -> Result<Decoded, DecodeError> {
    // libjpeg reports errors by calling the error manager, which unwinds (libjpeg is built for
    // that); this catches it and turns the message back into a value.
    let decoded = catch_unwind(AssertUnwindSafe(|| -> Result<Decoded, DecodeError> {
        let jpeg_error = |e: std::io::Error| DecodeError::Jpeg(e.to_string());
        let mut decompress = mozjpeg::decompress::DecompressBuilder::new()
            .with_err(strict_error_manager())
            .with_markers(&[Marker::APP(1)])
            .from_mem(bytes)
            .map_err(jpeg_error)?;
        let (width, height) = decompress.size();
        // Checked on the file's size: progressive files keep every coefficient of it.
        check_size(width as u64, height as u64, 3, limits)?;
        let orientation = jpeg_orientation(&decompress);
        // The target is in the displayed frame; the DCT scales the stored one.
        let stored_target = match target {
            Some([w, h]) if swaps_axes(orientation) => Some([h, w]),
            other => other,
        };
        decompress.scale(dct_numerator([width, height], stored_target));
        let cmyk = matches!(
            decompress.color_space(),
            J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK
        );
        let data = if cmyk {
            let mut started = decompress
                .to_colorspace(J_COLOR_SPACE::JCS_CMYK)
                .map_err(jpeg_error)?;
            let cmyk: Vec<[u8; 4]> = started.read_scanlines().map_err(jpeg_error)?;
            let size = [started.width(), started.height()];
            started.finish().map_err(jpeg_error)?;
            (size, cmyk_to_rgb(&cmyk))
        } else {
            let mut started = decompress.rgb().map_err(jpeg_error)?;
            let rgb: Vec<u8> = started.read_scanlines().map_err(jpeg_error)?;
            let size = [started.width(), started.height()];
            started.finish().map_err(jpeg_error)?;
            (size, rgb)
        };
        let ([w, h], data) = data;
        if data.len() != w * h * 3 {
            return Err(DecodeError::Jpeg("the image data ends early".to_string()));
        }
        let pixels = Rgb8 {
            width: w,
            height: h,
            data,
        };
        let original = if swaps_axes(orientation) {
            [height, width]
        } else {
            [width, height]
        };
        Ok(Decoded {
            pixels: orient(pixels, orientation),
            original,
        })
    }));
    match decoded {
        Ok(result) => result,
        Err(payload) => match payload.downcast::<JpegFailure>() {
            Ok(failure) => Err(DecodeError::Jpeg(failure.0)),
            // Not libjpeg's: a real bug, which keeps unwinding.
            Err(other) => resume_unwind(other),
        },
    }
}

/// Adobe's inverted CMYK (what libjpeg returns for CMYK and YCCK files) to RGB.
fn cmyk_to_rgb(cmyk: &[[u8; 4]]) -> Vec<u8> {
    cmyk.iter()
        .flat_map(|&[c, m, y, k]| {
            let mix = |v: u8| ((u16::from(v) * u16::from(k) + 127) / 255) as u8;
            [mix(c), mix(m), mix(y)]
        })
        .collect()
}

/// The payload libjpeg's errors unwind with.
struct JpegFailure(String);

/// libjpeg's standard error manager, except that errors unwind to [`decode_jpeg`] instead of
/// exiting the process, and warnings (premature end of data, corrupt entropy-coded data, bad
/// markers) are errors too.
fn strict_error_manager() -> jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of the (plain C) struct.
    let mut manager: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut manager) };
    manager.error_exit = Some(fail);
    manager.emit_message = Some(warning_fails);
    manager
}

extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    resume_unwind(Box::new(JpegFailure(message(cinfo))));
}

extern "C-unwind" fn warning_fails(cinfo: &mut jpeg_common_struct, level: c_int) {
    // Level -1 is a warning; 0 and above are trace messages, which are not.
    if level < 0 {
        fail(cinfo);
    }
}

/// libjpeg's text for its current message.
fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: `err` points at the manager this module installed, which lives as long as the
    // decompressor; format_message writes at most 80 bytes (JMSG_LENGTH_MAX) into the buffer.
    unsafe {
        let Some(manager) = cinfo.err.as_ref() else {
            return "unknown libjpeg error".to_string();
        };
        let code = manager.msg_code;
        let Some(format) = manager.format_message else {
            return format!("libjpeg message {code}");
        };
        let mut buffer = [0u8; 80];
        // libjpeg writes into the buffer although the binding declares it shared.
        let format: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, &mut [u8; 80]) =
            std::mem::transmute(format);
        format(cinfo, &mut buffer);
        let text = buffer.split(|&c| c == 0).next().unwrap_or_default();
        String::from_utf8_lossy(text).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_scale_keeps_at_least_the_target() {
        assert_eq!(dct_numerator([500, 375], Some([64, 64])), 2); // 125×94
        assert_eq!(dct_numerator([1280, 960], Some([64, 64])), 1); // 160×120
        assert_eq!(dct_numerator([500, 375], Some([224, 224])), 8); // 250×188 is too small
        assert_eq!(dct_numerator([1280, 960], Some([224, 224])), 2); // 320×240
        assert_eq!(dct_numerator([64, 64], Some([64, 64])), 8);
        assert_eq!(dct_numerator([129, 129], Some([64, 64])), 4); // 65×65
        assert_eq!(dct_numerator([1280, 960], None), 8);
    }
}
