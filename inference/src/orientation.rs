//! EXIF orientation: how a file says its pixels must be turned or mirrored to be displayed.
//!
//! Phones store a portrait photo as landscape pixels with orientation 6 ("turn 90° clockwise");
//! browsers and Pillow's `ImageOps.exif_transpose` apply it before showing or processing the
//! picture. [`crate::decode`] applies it to every image, so training data, served answers and
//! the demo page all work in the frame a person sees.

use image::metadata::Orientation;
use image::{DynamicImage, ImageEncoder, RgbImage};
use mozjpeg::Marker;

use crate::decode::Rgb8;

/// Whether `orientation` turns the picture by 90° (so width and height trade places).
pub fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// `pixels` as displayed under `orientation`.
pub fn orient(pixels: Rgb8, orientation: Orientation) -> Rgb8 {
    if orientation == Orientation::NoTransforms {
        return pixels;
    }
    let (width, height) = (pixels.width as u32, pixels.height as u32);
    let Some(buffer) = RgbImage::from_raw(width, height, pixels.data) else {
        unreachable!("a decoded buffer holds width × height × 3 bytes");
    };
    let mut image = DynamicImage::ImageRgb8(buffer);
    image.apply_orientation(orientation);
    let turned = image.into_rgb8();
    Rgb8 {
        width: turned.width() as usize,
        height: turned.height() as usize,
        data: turned.into_raw(),
    }
}

/// The orientation a JPEG's APP1 `Exif` marker names (the decompressor must have been told to
/// keep APP1 markers); none when there is no such marker or it has no orientation entry.
pub fn jpeg_orientation<R>(decompress: &mozjpeg::Decompress<R>) -> Orientation {
    decompress
        .markers()
        .filter(|marker| marker.marker == Marker::APP(1))
        .find_map(|marker| marker.data.strip_prefix(b"Exif\0\0"))
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// A minimal EXIF chunk (a little-endian TIFF header and one IFD entry) that says
/// `orientation`: what cameras write, for tests and fixtures.
pub fn exif_chunk(orientation: Orientation) -> Vec<u8> {
    let mut chunk = b"II*\0".to_vec();
    chunk.extend_from_slice(&8u32.to_le_bytes()); // the IFD follows the header
    chunk.extend_from_slice(&1u16.to_le_bytes()); // one entry
    chunk.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    chunk.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    chunk.extend_from_slice(&1u32.to_le_bytes()); // one value
    chunk.extend_from_slice(&u16::from(orientation.to_exif()).to_le_bytes());
    chunk.extend_from_slice(&[0, 0]); // the value field's padding
    chunk.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    chunk
}

/// The orientation that undoes `orientation`: the stored pixels of a picture displayed as
/// given. Only the two quarter turns differ from their inverse; the rest are reflections or a
/// half turn.
pub fn inverse(orientation: Orientation) -> Orientation {
    match orientation {
        Orientation::Rotate90 => Orientation::Rotate270,
        Orientation::Rotate270 => Orientation::Rotate90,
        other => other,
    }
}

/// A greyscale JPEG of the picture `shown`, stored as a camera stores it under `orientation`:
/// the pixels turned back, and an EXIF tag that turns them forward again.
///
/// A picture whose grey level is constant on aligned 8×8 blocks (sides multiples of 8) comes
/// out of JPEG unchanged under every orientation (each block keeps only its mean, and a grey
/// file has no subsampled colour), so tests built on it can demand identical answers.
pub fn camera_jpeg(
    shown: &image::GrayImage,
    orientation: Orientation,
) -> Result<Vec<u8>, image::ImageError> {
    grey_jpeg(shown, orientation, true)
}

/// [`camera_jpeg`]'s stored pixels without the tag: the picture a decoder that ignored EXIF
/// would read (landscape for a portrait picture under a quarter turn).
pub fn untagged_jpeg(
    shown: &image::GrayImage,
    orientation: Orientation,
) -> Result<Vec<u8>, image::ImageError> {
    grey_jpeg(shown, orientation, false)
}

fn grey_jpeg(
    shown: &image::GrayImage,
    orientation: Orientation,
    tagged: bool,
) -> Result<Vec<u8>, image::ImageError> {
    let mut stored = DynamicImage::ImageLuma8(shown.clone());
    stored.apply_orientation(inverse(orientation));
    let mut jpeg = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95);
    if tagged {
        encoder
            .set_exif_metadata(exif_chunk(orientation))
            .map_err(image::ImageError::Unsupported)?;
    }
    stored.write_with_encoder(encoder)?;
    Ok(jpeg)
}

/// The eight EXIF orientations, 1 to 8.
pub fn all() -> impl Iterator<Item = Orientation> {
    (1..=8).filter_map(Orientation::from_exif)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::codecs::webp::WebPEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    use super::*;
    use crate::decode::{DecodeLimits, decode, decode_for};

    /// A 24×16 picture no turn or mirror maps onto itself: a gradient with one bright corner.
    fn picture() -> Rgb8 {
        let (width, height) = (24, 16);
        let mut data = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                let corner = x < 6 && y < 4;
                data.extend([
                    (x * 10) as u8,
                    (y * 15) as u8,
                    if corner { 255 } else { 40 },
                ]);
            }
        }
        Rgb8 {
            width,
            height,
            data,
        }
    }

    /// `pixels` encoded by `encoder` with an EXIF chunk naming `orientation`.
    fn encode<E: ImageEncoder>(
        mut encoder: E,
        pixels: &Rgb8,
        orientation: Orientation,
    ) -> Result<(), image::ImageError> {
        encoder
            .set_exif_metadata(exif_chunk(orientation))
            .expect("the encoder writes EXIF");
        encoder.write_image(
            &pixels.data,
            pixels.width as u32,
            pixels.height as u32,
            ExtendedColorType::Rgb8,
        )
    }

    /// The stored file of `shown` under `orientation`, in each format: the pixels turned back
    /// and the tag that turns them forward again.
    fn files(shown: &Rgb8, orientation: Orientation) -> [(&'static str, Vec<u8>); 3] {
        let stored = orient(shown.clone(), inverse(orientation));
        let (mut png, mut jpeg, mut webp) = (Vec::new(), Vec::new(), Vec::new());
        encode(PngEncoder::new(Cursor::new(&mut png)), &stored, orientation).unwrap();
        encode(
            JpegEncoder::new_with_quality(&mut jpeg, 100),
            &stored,
            orientation,
        )
        .unwrap();
        encode(WebPEncoder::new_lossless(&mut webp), &stored, orientation).unwrap();
        [("PNG", png), ("JPEG", jpeg), ("WebP", webp)]
    }

    fn mean_abs_difference(a: &Rgb8, b: &Rgb8) -> f64 {
        let sum: u64 = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(&x, &y)| u64::from(x.abs_diff(y)))
            .sum();
        sum as f64 / a.data.len() as f64
    }

    #[test]
    fn every_orientation_decodes_to_the_displayed_picture_in_every_format() {
        let shown = picture();
        for orientation in all() {
            for (format, bytes) in files(&shown, orientation) {
                let decoded = decode(&bytes, DecodeLimits::default()).unwrap();
                let what = format!("{format}, orientation {}", orientation.to_exif());
                assert_eq!(decoded.original, [24, 16], "{what}");
                assert_eq!(
                    [decoded.pixels.width, decoded.pixels.height],
                    [24, 16],
                    "{what}"
                );
                // PNG and lossless WebP are exact; JPEG at quality 100 is close.
                let tolerance = if format == "JPEG" { 3.0 } else { 0.0 };
                let difference = mean_abs_difference(&decoded.pixels, &shown);
                assert!(difference <= tolerance, "{what}: off by {difference:.2}");
            }
        }
    }

    #[test]
    fn the_dct_downscale_keeps_the_displayed_target() {
        // A 256×128 stored picture turned 90°: displayed 128×256. Asking for 64×128 allows a
        // 1/2 downscale of the file (to 128×64 stored, 64×128 shown), not 1/4.
        let (width, height) = (256, 128);
        let stored = Rgb8 {
            width,
            height,
            data: vec![128; width * height * 3],
        };
        let mut jpeg = Vec::new();
        encode(JpegEncoder::new(&mut jpeg), &stored, Orientation::Rotate90).unwrap();
        let decoded = decode_for(&jpeg, Some([64, 128]), DecodeLimits::default()).unwrap();
        assert_eq!(decoded.original, [128, 256]);
        assert_eq!([decoded.pixels.width, decoded.pixels.height], [64, 128]);
    }

    #[test]
    fn block_constant_grey_pictures_survive_every_orientation_exactly() {
        let shown = image::GrayImage::from_fn(32, 16, |x, y| {
            image::Luma([((x / 8) * 60 + (y / 8) * 25) as u8])
        });
        let rgb: Vec<u8> = shown.as_raw().iter().flat_map(|&v| [v, v, v]).collect();
        for orientation in all() {
            let jpeg = camera_jpeg(&shown, orientation).unwrap();
            let decoded = decode(&jpeg, DecodeLimits::default()).unwrap();
            assert_eq!(
                (decoded.pixels.width, decoded.pixels.height),
                (32, 16),
                "orientation {}",
                orientation.to_exif()
            );
            let difference: i32 = decoded
                .pixels
                .data
                .iter()
                .zip(&rgb)
                .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
                .max()
                .unwrap_or(0);
            assert!(
                difference <= 1,
                "orientation {}: {difference}",
                orientation.to_exif()
            );
            let upright = decode(
                &camera_jpeg(&shown, Orientation::NoTransforms).unwrap(),
                DecodeLimits::default(),
            )
            .unwrap();
            assert_eq!(
                decoded.pixels,
                upright.pixels,
                "orientation {}",
                orientation.to_exif()
            );
        }
    }

    #[test]
    fn a_file_without_exif_is_left_as_stored() {
        let mut png = Vec::new();
        let shown = picture();
        PngEncoder::new(Cursor::new(&mut png))
            .write_image(&shown.data, 24, 16, ExtendedColorType::Rgb8)
            .unwrap();
        assert_eq!(decode(&png, DecodeLimits::default()).unwrap().pixels, shown);
    }

    #[test]
    fn orientations_mean_what_exif_says() {
        // Stored: one row, A then B. Orientation 6 turns it 90° clockwise (A on top), 8 turns it
        // counter-clockwise (B on top), 2 mirrors it, 3 turns it half way.
        let (a, b) = ([1, 1, 1], [2, 2, 2]);
        let stored = Rgb8 {
            width: 2,
            height: 1,
            data: [a, b].concat(),
        };
        let shown = |exif| orient(stored.clone(), Orientation::from_exif(exif).unwrap());
        let column = |data: Vec<[u8; 3]>| Rgb8 {
            width: 1,
            height: 2,
            data: data.concat(),
        };
        let row = |data: Vec<[u8; 3]>| Rgb8 {
            width: 2,
            height: 1,
            data: data.concat(),
        };
        assert_eq!(shown(6), column(vec![a, b]));
        assert_eq!(shown(8), column(vec![b, a]));
        assert_eq!(shown(2), row(vec![b, a]));
        assert_eq!(shown(3), row(vec![b, a]));
        assert_eq!(shown(1), row(vec![a, b]));
    }

    #[test]
    fn quarter_turns_swap_the_axes() {
        let turned: Vec<u8> = all()
            .filter(|&o| swaps_axes(o))
            .map(Orientation::to_exif)
            .collect();
        assert_eq!(turned, [5, 6, 7, 8]);
        for orientation in all() {
            let back = orient(orient(picture(), orientation), inverse(orientation));
            assert_eq!(back, picture(), "orientation {}", orientation.to_exif());
        }
    }
}
