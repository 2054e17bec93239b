//! Strict decoding: whole files decode (JPEGs scaled in the DCT domain when asked; JPEG, PNG and
//! WebP), files that end early or whose compressed data is corrupt are errors. EXIF orientation
//! is tested beside its code, in `src/orientation.rs`.

use std::io::Cursor;

use exemplar_inference::Normalization;
use exemplar_inference::decode::{DecodeError, DecodeLimits, decode, decode_for};
use exemplar_inference::image::{Image, decode_bytes, preprocess, preprocess_rgb8};

/// A photo-like picture: smooth gradients and some texture, so JPEG scans carry real data.
fn picture(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let t = ((x * 7 + y * 13) % 31) as u8;
        image::Rgb([
            (x * 255 / width) as u8 ^ t,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8 / 2 + t,
        ])
    })
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    picture(width, height).write_with_encoder(encoder).unwrap();
    out
}

/// The picture in a lossless `format` (PNG, or WebP, which browsers and phones share as well as
/// JPEG).
fn lossless(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture(width, height).write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    lossless(image::ImageFormat::Png, width, height)
}

fn webp(width: u32, height: u32) -> Vec<u8> {
    lossless(image::ImageFormat::WebP, width, height)
}

/// Where the entropy-coded data of the (single) scan starts: after the SOS segment.
fn scan_start(jpeg: &[u8]) -> usize {
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let length = u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]) as usize;
    sos + 2 + length
}

#[test]
fn whole_files_decode_and_jpegs_shrink_in_the_dct_domain() {
    let bytes = jpeg(500, 375);
    let full = decode(&bytes, DecodeLimits::default()).unwrap();
    assert_eq!([full.pixels.width, full.pixels.height], [500, 375]);
    assert_eq!(full.original, [500, 375]);
    let small = decode_for(&bytes, Some([64, 64]), DecodeLimits::default()).unwrap();
    assert_eq!([small.pixels.width, small.pixels.height], [125, 94]);
    assert_eq!(small.original, [500, 375]);
    let png = decode(&png(40, 30), DecodeLimits::default()).unwrap();
    assert_eq!(png.pixels.data, picture(40, 30).into_raw());
}

#[test]
fn jpegs_cut_inside_their_scan_are_refused() {
    let bytes = jpeg(200, 150);
    let start = scan_start(&bytes);
    for end in [
        start + 1,
        start + (bytes.len() - start) / 2,
        bytes.len() - 3,
        bytes.len() - 2,
    ] {
        match decode(&bytes[..end], DecodeLimits::default()) {
            Err(DecodeError::Jpeg(reason)) => assert!(!reason.is_empty()),
            other => panic!("cut at {end} of {}: {other:?}", bytes.len()),
        }
        // Scaled decoding is just as strict.
        assert!(decode_for(&bytes[..end], Some([32, 32]), DecodeLimits::default()).is_err());
    }
    // The header alone, and the first bytes.
    assert!(decode(&bytes[..start], DecodeLimits::default()).is_err());
    assert!(decode(&bytes[..40], DecodeLimits::default()).is_err());
}

#[test]
fn corrupt_jpeg_scan_data_is_refused() {
    let bytes = jpeg(200, 150);
    let start = scan_start(&bytes);
    // A restart marker where the file has no restart interval.
    let mut marker = bytes.clone();
    let at = start + (bytes.len() - start) / 2;
    marker[at] = 0xFF;
    marker[at + 1] = 0xD3;
    assert!(matches!(
        decode(&marker, DecodeLimits::default()),
        Err(DecodeError::Jpeg(_))
    ));
    // A stretch of the scan zeroed: the Huffman codes then run out of step with the MCUs.
    let mut zeroed = bytes.clone();
    zeroed[at..at + 200].fill(0);
    assert!(matches!(
        decode(&zeroed, DecodeLimits::default()),
        Err(DecodeError::Jpeg(_))
    ));
}

#[test]
fn truncated_or_corrupt_pngs_are_refused() {
    let bytes = png(64, 48);
    for end in [bytes.len() / 2, bytes.len() - 13, 20] {
        assert!(
            decode(&bytes[..end], DecodeLimits::default()).is_err(),
            "cut at {end}"
        );
    }
    let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
    let mut flipped = bytes.clone();
    flipped[idat + 20] ^= 0x40;
    assert!(decode(&flipped, DecodeLimits::default()).is_err());
}

#[test]
fn webps_decode_and_truncated_or_corrupt_ones_are_refused() {
    let bytes = webp(64, 48);
    let decoded = decode(&bytes, DecodeLimits::default()).unwrap();
    assert_eq!(decoded.original, [64, 48]);
    assert_eq!(decoded.pixels.data, picture(64, 48).into_raw(), "lossless");
    for end in [bytes.len() / 2, bytes.len() - 5, 20] {
        let result = decode(&bytes[..end], DecodeLimits::default());
        assert!(
            matches!(result, Err(DecodeError::Image { format: "WebP", .. })),
            "cut at {end}: {result:?}"
        );
    }
    let mut flipped = bytes.clone();
    let middle = bytes.len() / 2;
    for b in &mut flipped[middle..middle + 16] {
        *b ^= 0x5A;
    }
    assert!(decode(&flipped, DecodeLimits::default()).is_err());
}

#[test]
fn other_formats_are_refused_by_name() {
    for format in [
        image::ImageFormat::Bmp,
        image::ImageFormat::Gif,
        image::ImageFormat::Tiff,
    ] {
        // Their signatures are enough: the bytes must be named, not decoded.
        let signature: &[u8] = match format {
            image::ImageFormat::Bmp => b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0",
            image::ImageFormat::Gif => b"GIF89a\x01\0\x01\0\0\0\0",
            _ => b"II*\0\x08\0\0\0",
        };
        let error = decode(signature, DecodeLimits::default()).unwrap_err();
        assert!(matches!(error, DecodeError::UnknownFormat), "{format:?}");
        assert_eq!(error.to_string(), "not a PNG, JPEG or WebP image");
    }
}

#[test]
fn limits_are_checked_from_the_header() {
    let limits = DecodeLimits {
        max_dimension: 100,
        max_alloc_bytes: 1 << 20,
    };
    assert!(matches!(
        decode(&jpeg(120, 50), limits),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        decode(&png(120, 50), limits),
        Err(DecodeError::OverLimits { .. })
    ));
    assert!(matches!(
        decode(&webp(120, 50), limits),
        Err(DecodeError::TooLarge { .. } | DecodeError::OverLimits { .. })
    ));
    assert!(decode(&jpeg(100, 50), limits).is_ok());
    assert!(decode(&webp(100, 50), limits).is_ok());
    assert!(matches!(
        decode(b"GIF89a...", limits),
        Err(DecodeError::UnknownFormat)
    ));
    assert!(matches!(decode(b"", limits), Err(DecodeError::Empty)));
}

/// The server's path (8-bit pixels straight to the network input) is the training side's path
/// (`Image`, then `preprocess`) to the last bit when the decoder did not downscale.
#[test]
fn eight_bit_preprocessing_equals_the_training_side() {
    let normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    for bytes in [jpeg(500, 375), png(97, 61)] {
        let decoded = decode(&bytes, DecodeLimits::default()).unwrap();
        for size in [[64, 64], [224, 224], [120, 80], [300, 400]] {
            let mut served = Vec::new();
            preprocess_rgb8(&decoded.pixels, size, &normalization, &mut served);
            let mut trained = Vec::new();
            preprocess(
                &decode_bytes(&bytes).unwrap(),
                size,
                &normalization,
                &mut trained,
            );
            assert_eq!(served, trained, "size {size:?}");
        }
    }
    let _ = Image::new(1, 1);
}

/// A smooth, photo-like picture (low-frequency shading and edges, little fine texture).
fn photo(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let shade =
            |f: f32, p: f32| (127.0 + 100.0 * (f * u * 6.3 + p).sin() * (f * v * 4.1).cos()) as u8;
        let disc = ((u - 0.6).powi(2) + (v - 0.4).powi(2)) < 0.04;
        if disc {
            image::Rgb([220, 40, 30])
        } else {
            image::Rgb([shade(1.0, 0.0), shade(1.7, 1.0), shade(2.3, 2.0)])
        }
    });
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    picture.write_with_encoder(encoder).unwrap();
    out
}

/// When the decoder downscales, the server's input differs from the training side's (which
/// samples the full-size picture): the stated tolerance is a mean absolute difference of at most
/// 1% of the pixel range, with 99% of the values within 12%, on a photo-like picture (smooth
/// shading and a sharp-edged disc; at the edge single values differ by up to a quarter of the
/// range: area averaging against point sampling).
#[test]
fn downscaled_decoding_stays_close_to_the_training_side() {
    let unit = Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let bytes = photo(640, 480);
    for size in [[64, 64], [32, 32], [16, 16], [160, 120]] {
        let decoded = decode_for(&bytes, Some(size), DecodeLimits::default()).unwrap();
        assert!(
            decoded.pixels.width < 640,
            "{size:?} should have been downscaled"
        );
        let mut served = Vec::new();
        preprocess_rgb8(&decoded.pixels, size, &unit, &mut served);
        let mut trained = Vec::new();
        preprocess(&decode_bytes(&bytes).unwrap(), size, &unit, &mut trained);
        let mut differences: Vec<f32> = served
            .iter()
            .zip(&trained)
            .map(|(a, b)| (a - b).abs())
            .collect();
        differences.sort_by(f32::total_cmp);
        let mean = differences.iter().sum::<f32>() / differences.len() as f32;
        let p99 = differences[differences.len() * 99 / 100];
        eprintln!(
            "{size:?} from {}×{}: mean {mean:.4}, p99 {p99:.4}, max {:.4}",
            decoded.pixels.width,
            decoded.pixels.height,
            differences[differences.len() - 1]
        );
        assert!(
            mean <= 0.01 && p99 <= 0.12,
            "{size:?}: mean {mean}, p99 {p99}"
        );
    }
}

/// libjpeg's own encoder, for the layouts the `image` crate does not write.
fn mozjpeg_file(space: mozjpeg::ColorSpace, channels: usize, progressive: bool) -> Vec<u8> {
    let (width, height) = (96, 64);
    let pixels: Vec<u8> = (0..width * height * channels)
        .map(|i| ((i * 37) % 251) as u8 / 2 + 60)
        .collect();
    let mut compress = mozjpeg::Compress::new(space);
    compress.set_size(width, height);
    compress.set_quality(90.0);
    if progressive {
        compress.set_progressive_mode();
    }
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&pixels).unwrap();
    started.finish().unwrap()
}

#[test]
fn progressive_grey_and_cmyk_jpegs_decode_to_rgb() {
    use mozjpeg::ColorSpace::{JCS_CMYK, JCS_GRAYSCALE, JCS_RGB};
    for (space, channels, progressive) in [
        (JCS_RGB, 3, true),
        (JCS_GRAYSCALE, 1, false),
        (JCS_GRAYSCALE, 1, true),
        (JCS_CMYK, 4, false),
    ] {
        let bytes = mozjpeg_file(space, channels, progressive);
        let full = decode(&bytes, DecodeLimits::default()).unwrap();
        assert_eq!([full.pixels.width, full.pixels.height], [96, 64]);
        assert_eq!(full.pixels.data.len(), 96 * 64 * 3);
        let small = decode_for(&bytes, Some([24, 16]), DecodeLimits::default()).unwrap();
        assert_eq!(
            [small.pixels.width, small.pixels.height],
            [24, 16],
            "{space:?}"
        );
        // Cut short, each is refused like a baseline file.
        assert!(decode(&bytes[..bytes.len() * 3 / 4], DecodeLimits::default()).is_err());
    }
}
