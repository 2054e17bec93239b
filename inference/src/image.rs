//! The in-memory image type shared by training and serving, and safe decoding of untrusted bytes.
//!
//! Images are RGB, `f32` in `[0, 1]`, stored row-major with interleaved channels (HWC): the
//! layout the augmentations work in. [`Image::write_chw_normalized`] produces the network layout.

use crate::card::Normalization;
use crate::decode::decode;
pub use crate::decode::{DecodeLimits, MAX_ALLOC_BYTES, MAX_DIMENSION, Rgb8};

/// An RGB image with `f32` channels in `[0, 1]`, HWC layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Image {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width * height * 3],
        }
    }

    /// Converts 8-bit RGB pixels.
    pub fn from_rgb8(image: &image::RgbImage) -> Self {
        Self {
            width: image.width() as usize,
            height: image.height() as usize,
            data: image.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
        }
    }

    /// Converts decoded 8-bit RGB pixels.
    pub fn from_rgb8_pixels(pixels: &Rgb8) -> Self {
        Self {
            width: pixels.width,
            height: pixels.height,
            data: pixels.data.iter().map(|&v| v as f32 / 255.0).collect(),
        }
    }

    /// Replicates one grey channel (`width * height` values in `[0, 1]`) into RGB.
    pub fn from_gray(width: usize, height: usize, gray: &[f32]) -> Self {
        Self {
            width,
            height,
            data: gray.iter().flat_map(|&v| [v, v, v]).collect(),
        }
    }

    /// Converts to 8-bit RGB (for writing previews and fixtures).
    pub fn to_rgb8(&self) -> image::RgbImage {
        let raw = self
            .data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        image::RgbImage::from_raw(self.width as u32, self.height as u32, raw)
            .expect("buffer size matches dimensions")
    }

    #[inline]
    pub fn pixel(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    #[inline]
    pub fn set_pixel(&mut self, x: usize, y: usize, rgb: [f32; 3]) {
        let i = (y * self.width + x) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }

    /// Bilinear resampling of the region `(x0, y0, w, h)` (in source pixels, may be fractional)
    /// to `out_w × out_h`, with pixel-centre alignment (`align_corners = False`).
    pub fn resample(&self, region: [f32; 4], out_w: usize, out_h: usize) -> Image {
        let [x0, y0, w, h] = region;
        let mut out = Image::new(out_w, out_h);
        let sx = w / out_w as f32;
        let sy = h / out_h as f32;
        let max_x = (self.width - 1) as f32;
        let max_y = (self.height - 1) as f32;
        for oy in 0..out_h {
            let fy = (y0 + (oy as f32 + 0.5) * sy - 0.5).clamp(0.0, max_y);
            let y_lo = fy.floor() as usize;
            let y_hi = (y_lo + 1).min(self.height - 1);
            let ty = fy - y_lo as f32;
            for ox in 0..out_w {
                let fx = (x0 + (ox as f32 + 0.5) * sx - 0.5).clamp(0.0, max_x);
                let x_lo = fx.floor() as usize;
                let x_hi = (x_lo + 1).min(self.width - 1);
                let tx = fx - x_lo as f32;
                let (a, b) = (self.pixel(x_lo, y_lo), self.pixel(x_hi, y_lo));
                let (c, d) = (self.pixel(x_lo, y_hi), self.pixel(x_hi, y_hi));
                let mut rgb = [0.0; 3];
                for ch in 0..3 {
                    let top = a[ch] + (b[ch] - a[ch]) * tx;
                    let bottom = c[ch] + (d[ch] - c[ch]) * tx;
                    rgb[ch] = top + (bottom - top) * ty;
                }
                out.set_pixel(ox, oy, rgb);
            }
        }
        out
    }

    /// Mirrors the image left to right, in place.
    pub fn flip_horizontal(&mut self) {
        let w = self.width;
        for row in self.data.chunks_exact_mut(w * 3) {
            for x in 0..w / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
                }
            }
        }
    }

    /// Resizes the whole image.
    pub fn resize(&self, out_w: usize, out_h: usize) -> Image {
        if out_w == self.width && out_h == self.height {
            return self.clone();
        }
        self.resample(
            [0.0, 0.0, self.width as f32, self.height as f32],
            out_w,
            out_h,
        )
    }

    /// Network input: CHW, each channel normalised as `(v - mean) / std`.
    pub fn write_chw_normalized(&self, mean: [f32; 3], std: [f32; 3], out: &mut Vec<f32>) {
        let plane = self.width * self.height;
        out.reserve(plane * 3);
        for ch in 0..3 {
            out.extend(
                self.data
                    .iter()
                    .skip(ch)
                    .step_by(3)
                    .take(plane)
                    .map(|&v| (v - mean[ch]) / std[ch]),
            );
        }
    }
}

/// Decodes image bytes at full size within the default [`DecodeLimits`]; the error is a
/// human-readable reason.
pub fn decode_bytes(bytes: &[u8]) -> Result<Image, String> {
    let decoded = decode(bytes, DecodeLimits::default()).map_err(|e| e.to_string())?;
    Ok(Image::from_rgb8_pixels(&decoded.pixels))
}

/// The network input for `image`: stretched to `width × height` and normalised, CHW. Training
/// evaluation and the server both call this, so they feed the network identically.
pub fn preprocess(
    image: &Image,
    size: [usize; 2],
    normalization: &Normalization,
    out: &mut Vec<f32>,
) {
    let stride = image.width * 3;
    resize_normalized(
        [image.width, image.height],
        |y, x, ch| image.data[y * stride + x * 3 + ch],
        size,
        normalization,
        out,
    );
}

/// [`preprocess`] straight from 8-bit pixels, as the server runs it: the same sampling and
/// arithmetic (so equal pixels give equal inputs), without a full-size `f32` copy of the
/// picture. Appends `3 × width × height` values to `out`.
pub fn preprocess_rgb8(
    pixels: &Rgb8,
    size: [usize; 2],
    normalization: &Normalization,
    out: &mut Vec<f32>,
) {
    let stride = pixels.width * 3;
    resize_normalized(
        [pixels.width, pixels.height],
        |y, x, ch| pixels.data[y * stride + x * 3 + ch] as f32 / 255.0,
        size,
        normalization,
        out,
    );
}

/// Bilinear resampling of a `[width, height]` source, read through `value(y, x, channel)` in
/// `[0, 1]`, to `size` with pixel-centre alignment (as [`Image::resample`] of the whole image),
/// normalised and appended to `out` in CHW order.
fn resize_normalized(
    source: [usize; 2],
    value: impl Fn(usize, usize, usize) -> f32,
    size: [usize; 2],
    normalization: &Normalization,
    out: &mut Vec<f32>,
) {
    let (mean, std) = (normalization.mean, normalization.std);
    let start = out.len();
    out.resize(start + 3 * size[0] * size[1], 0.0);
    resize_chw(source, value, size, |index, ch, v| {
        out[start + index] = (v - mean[ch]) / std[ch];
    });
}

/// [`preprocess_rgb8`] without the normalisation, in 8 bits: the resized pixels (`0..=255`,
/// rounded to the nearest) in CHW order, as a model whose input is UINT8 takes them (its graph
/// normalises them). Appends `3 × width × height` values to `out`.
pub fn resize_rgb8(pixels: &Rgb8, size: [usize; 2], out: &mut Vec<u8>) {
    let stride = pixels.width * 3;
    let start = out.len();
    out.resize(start + 3 * size[0] * size[1], 0);
    resize_chw(
        [pixels.width, pixels.height],
        |y, x, ch| pixels.data[y * stride + x * 3 + ch] as f32,
        size,
        |index, _, v| out[start + index] = v.round().clamp(0.0, 255.0) as u8,
    );
}

/// Bilinear resampling of a `[width, height]` source, read through `value(y, x, channel)`, to
/// `size` with pixel-centre alignment (as [`Image::resample`] of the whole image); each result
/// goes to `store(chw_index, channel, value)`.
fn resize_chw(
    [source_w, source_h]: [usize; 2],
    value: impl Fn(usize, usize, usize) -> f32,
    [width, height]: [usize; 2],
    mut store: impl FnMut(usize, usize, f32),
) {
    /// Per output column (or row): the two source indices and the weight of the second.
    fn taps(source: usize, output: usize) -> Vec<(usize, usize, f32)> {
        let scale = source as f32 / output as f32;
        let max = (source - 1) as f32;
        (0..output)
            .map(|o| {
                let f = ((o as f32 + 0.5) * scale - 0.5).clamp(0.0, max);
                let lo = f.floor() as usize;
                (lo, (lo + 1).min(source - 1), f - lo as f32)
            })
            .collect()
    }
    let (columns, rows) = (taps(source_w, width), taps(source_h, height));
    for (oy, &(y_lo, y_hi, ty)) in rows.iter().enumerate() {
        for (ox, &(x_lo, x_hi, tx)) in columns.iter().enumerate() {
            for ch in 0..3 {
                let (a, b) = (value(y_lo, x_lo, ch), value(y_lo, x_hi, ch));
                let (c, d) = (value(y_hi, x_lo, ch), value(y_hi, x_hi, ch));
                let top = a + (b - a) * tx;
                let bottom = c + (d - c) * tx;
                store(
                    (ch * height + oy) * width + ox,
                    ch,
                    top + (bottom - top) * ty,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn resize_of_constant_image_is_constant_and_chw_is_normalised() {
        let mut img = Image::new(5, 3);
        img.data.iter_mut().for_each(|v| *v = 0.5);
        let small = img.resize(2, 2);
        assert!(small.data.iter().all(|&v| (v - 0.5).abs() < 1e-6));
        let mut out = Vec::new();
        small.write_chw_normalized([0.5, 0.25, 0.0], [1.0, 0.5, 2.0], &mut out);
        assert_eq!(
            out,
            vec![
                0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25
            ]
        );
    }

    /// `preprocess` samples as `Image::resize` does, value for value.
    #[test]
    fn preprocess_is_resize_then_normalise() {
        let mut image = Image::new(37, 23);
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 1000) as f32 / 999.0;
        }
        let normalization = Normalization {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        };
        for [w, h] in [[37, 23], [16, 16], [64, 48], [5, 40]] {
            let mut expected = Vec::new();
            image.resize(w, h).write_chw_normalized(
                normalization.mean,
                normalization.std,
                &mut expected,
            );
            let mut got = Vec::new();
            preprocess(&image, [w, h], &normalization, &mut got);
            assert_eq!(got, expected, "{w}×{h}");
        }
    }

    /// The 8-bit resize samples as the normalised one does: normalising its output gives the
    /// float path's input to within the rounding to 8 bits, and with no resize it is exact.
    #[test]
    fn the_8_bit_resize_is_the_float_resize_rounded() {
        let pixels = Rgb8 {
            width: 37,
            height: 23,
            data: (0..37 * 23 * 3).map(|i| ((i * 7919) % 256) as u8).collect(),
        };
        let normalization = Normalization::default();
        for [w, h] in [[37, 23], [16, 16], [64, 48]] {
            let (mut floats, mut bytes) = (Vec::new(), Vec::new());
            preprocess_rgb8(&pixels, [w, h], &normalization, &mut floats);
            resize_rgb8(&pixels, [w, h], &mut bytes);
            assert_eq!(bytes.len(), floats.len());
            let plane = w * h;
            for (i, (&b, &f)) in bytes.iter().zip(&floats).enumerate() {
                let ch = i / plane;
                let v = f * normalization.std[ch] + normalization.mean[ch];
                let tolerance = if [w, h] == [37, 23] {
                    1e-4
                } else {
                    0.5 / 255.0 + 1e-4
                };
                assert!(
                    (b as f32 / 255.0 - v).abs() <= tolerance,
                    "{b} vs {v} at {i}, {w}×{h}"
                );
            }
        }
    }

    #[test]
    fn garbage_and_truncated_files_are_errors_not_panics() {
        assert!(decode_bytes(b"definitely not an image").is_err());
        let mut png = Vec::new();
        image::RgbImage::new(8, 8)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(decode_bytes(&png).is_ok());
        assert!(decode_bytes(&png[..png.len() / 2]).is_err());
    }

    #[test]
    fn huge_declared_dimensions_are_rejected_before_allocation() {
        // A valid PNG header claiming 100000 × 100000 pixels, with no data behind it.
        let mut png = Vec::new();
        image::GrayImage::new(1, 1)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode_bytes(&png).unwrap_err();
        assert!(!err.is_empty());
    }
}
