//! Pictures as clients send them, through `serve`: a phone's JPEG whose EXIF orientation says
//! "turn me" is answered in the frame a person sees, exactly as the same picture stored upright;
//! WebP is answered like the same pixels in PNG, and a broken WebP is a 400 with its reason.
//!
//! The test picture is grey and constant on 8×8 blocks, which JPEG keeps exactly under every
//! turn and mirror (`exemplar_inference::orientation::camera_jpeg`), so the answers must be equal
//! to the last digit, not merely close.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use exemplar_inference::orientation::{self, camera_jpeg, untagged_jpeg};
use exemplar_tests::{Server, tiny_models};
use image::metadata::Orientation;
use image::{GrayImage, Luma};

fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("orientation")))
}

/// A 48×64 portrait picture (as displayed): a bright block on shaded ground, in 8×8 blocks.
fn portrait() -> GrayImage {
    GrayImage::from_fn(48, 64, |x, y| {
        let (bx, by) = (x / 8, y / 8);
        if (1..4).contains(&bx) && (2..6).contains(&by) {
            Luma([230])
        } else {
            Luma([(20 + bx * 25 + by * 9) as u8])
        }
    })
}

const ROUTES: [&str; 5] = [
    "/v1/detect",
    "/v1/segment",
    "/v1/landmarks",
    "/v1/classify",
    "/v1/embed",
];

#[test]
fn every_exif_orientation_is_answered_in_the_displayed_frame() {
    let server = Server::start(models(), &[]);
    let shown = portrait();
    let upright = camera_jpeg(&shown, Orientation::NoTransforms).unwrap();
    for route in ROUTES {
        let expected = server.post_image(route, &upright);
        assert_eq!(expected.status, 200, "{route}");
        let expected = expected.json();
        if let Some(width) = expected.get("width") {
            assert_eq!((width, &expected["height"]), (&48.into(), &64.into()));
        }
        for orientation in orientation::all() {
            let answer = server.post_image(route, &camera_jpeg(&shown, orientation).unwrap());
            assert_eq!(answer.status, 200, "{route}");
            assert_eq!(
                answer.json(),
                expected,
                "{route}, EXIF orientation {}",
                orientation.to_exif()
            );
        }
    }
    // The same stored pixels without their tag are another picture, a landscape one: the
    // comparison above would see a server that ignored the tag.
    let untagged = untagged_jpeg(&shown, Orientation::Rotate90).unwrap();
    let answer = server.post_image("/v1/detect", &untagged).json();
    assert_eq!(
        (answer["width"].as_u64(), answer["height"].as_u64()),
        (Some(64), Some(48))
    );
}

#[test]
fn webp_is_answered_like_the_same_pixels_in_png() {
    let server = Server::start(models(), &[]);
    let picture = image::RgbImage::from_fn(40, 32, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 7) as u8, ((x * y) % 200) as u8])
    });
    let encoded = |format| {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    let (png, webp) = (
        encoded(image::ImageFormat::Png),
        encoded(image::ImageFormat::WebP),
    );
    for route in ROUTES {
        let expected = server.post_image(route, &png);
        let answer = server.post_image(route, &webp);
        assert_eq!(
            (answer.status, answer.json()),
            (expected.status, expected.json()),
            "{route}"
        );
    }
    let truncated = server.post_image("/v1/detect", &webp[..webp.len() / 2]);
    assert_eq!(truncated.status, 400);
    let reason = truncated.json()["error"].to_string();
    assert!(reason.contains("corrupt or truncated WebP"), "{reason}");
    let gif = server.post_image("/v1/detect", b"GIF89a\x01\0\x01\0\0\0\0");
    assert_eq!(gif.status, 400);
    let reason = gif.json()["error"].to_string();
    assert!(reason.contains("not a PNG, JPEG or WebP image"), "{reason}");
}
