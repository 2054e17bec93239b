//! Property test of the decode path the server runs on every upload: random bytes and mutated
//! JPEG (with an EXIF orientation), PNG and WebP files (bytes changed, inserted, removed, cut
//! short) go through decoding and preprocessing. Each must end as an image or an error: never a panic, and never an allocation
//! larger than the decode limits allow.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use exemplar_inference::Normalization;
use exemplar_inference::decode::{DecodeLimits, decode_for};
use exemplar_inference::image::preprocess_rgb8;
use exemplar_inference::orientation;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The system allocator, remembering the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// Small limits, so that a header mutated to claim a huge picture must be refused.
const LIMITS: DecodeLimits = DecodeLimits {
    max_dimension: 512,
    max_alloc_bytes: 1 << 20,
};

/// A JPEG tagged "turn 90°" (so mutations reach the EXIF reader too), a PNG and a WebP.
fn seeds() -> [Vec<u8>; 3] {
    let picture = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
    });
    let mut jpeg = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85);
    let turn = image::metadata::Orientation::Rotate90;
    image::ImageEncoder::set_exif_metadata(&mut encoder, orientation::exif_chunk(turn)).unwrap();
    picture.write_with_encoder(encoder).unwrap();
    let encoded = |format| {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    [
        jpeg,
        encoded(image::ImageFormat::Png),
        encoded(image::ImageFormat::WebP),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Cut),
    ]
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match *edit {
            Edit::Set(i, b) => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Remove(i) => {
                bytes.remove(i % n);
            }
            Edit::Cut(i) => bytes.truncate(i % n),
        }
    }
    bytes
}

/// Decodes and preprocesses as the server does; checks the result's shape when it is an image.
fn run(bytes: &[u8]) -> Result<(), TestCaseError> {
    let normalization = Normalization {
        mean: [0.5; 3],
        std: [0.25; 3],
    };
    if let Ok(decoded) = decode_for(bytes, Some([32, 24]), LIMITS) {
        let pixels = &decoded.pixels;
        prop_assert_eq!(pixels.data.len(), pixels.width * pixels.height * 3);
        prop_assert!(pixels.width <= decoded.original[0] && pixels.height <= decoded.original[1]);
        let mut input = Vec::new();
        preprocess_rgb8(pixels, [32, 24], &normalization, &mut input);
        prop_assert_eq!(input.len(), 3 * 32 * 24);
        prop_assert!(input.iter().all(|v| v.is_finite()));
    }
    Ok(())
}

#[test]
fn random_and_mutated_files_are_images_or_errors() {
    let [jpeg, png, webp] = seeds();
    // A runner counts cases over its lifetime: one per input kind.
    let runner = |cases| {
        TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        })
    };
    runner(3000)
        .run(&prop::collection::vec(edit(), 1..12), |edits| {
            run(&mutate(&jpeg, &edits))
        })
        .unwrap();
    runner(1500)
        .run(&prop::collection::vec(edit(), 1..12), |edits| {
            run(&mutate(&png, &edits))
        })
        .unwrap();
    runner(1500)
        .run(&prop::collection::vec(edit(), 1..12), |edits| {
            run(&mutate(&webp, &edits))
        })
        .unwrap();
    // Random bytes, half of them behind a real signature so they reach the decoders' insides.
    let signature = prop_oneof![
        Just(Vec::new()),
        Just(vec![0xFF, 0xD8, 0xFF, 0xE0]),
        Just(b"\x89PNG\r\n\x1a\n".to_vec()),
        Just(b"RIFF\0\0\0\0WEBPVP8 ".to_vec()),
    ];
    runner(1500)
        .run(
            &(signature, prop::collection::vec(any::<u8>(), 0..4096)),
            |(mut head, tail)| {
                head.extend(tail);
                run(&head)
            },
        )
        .unwrap();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest as u64 <= LIMITS.max_alloc_bytes,
        "an allocation of {largest} bytes, over the limit of {}",
        LIMITS.max_alloc_bytes
    );
}
