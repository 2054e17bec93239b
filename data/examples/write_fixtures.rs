//! Writes the images and label masks of the hand-written format fixtures in
//! `data/tests/data/formats/` (the annotation files beside them are written by hand).
//!
//! Run from the workspace root: `cargo run -p exemplar-data --example write_fixtures`.
//! The output is committed; rerun only when changing the fixtures.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

const ROOT: &str = "data/tests/data/formats";

/// A smooth colour pattern, different per `seed`.
fn picture(width: u32, height: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            ((x * 5 + seed * 40) % 256) as u8,
            ((y * 7 + seed * 90) % 256) as u8,
            (((x + y) * 3 + seed * 20) % 256) as u8,
        ])
    })
}

fn save(image: &image::RgbImage, path: &str) {
    let path = Path::new(ROOT).join(path);
    image
        .save(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// An 8-bit PNG of raw values: palette-indexed (VOC) or greyscale (Cityscapes).
fn save_labels(values: &[u8], width: u32, height: u32, palette: bool, path: &str) {
    let path = Path::new(ROOT).join(path);
    let file = BufWriter::new(File::create(&path).expect("create"));
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_depth(png::BitDepth::Eight);
    if palette {
        encoder.set_color(png::ColorType::Indexed);
        // VOC's colour map: index i gets the devkit's bit-interleaved colour; 255 is cream.
        let mut colours = Vec::with_capacity(256 * 3);
        for i in 0..256u32 {
            let (mut r, mut g, mut b, mut c) = (0u32, 0u32, 0u32, i);
            for j in 0..8 {
                r |= (c & 1) << (7 - j);
                g |= ((c >> 1) & 1) << (7 - j);
                b |= ((c >> 2) & 1) << (7 - j);
                c >>= 3;
            }
            colours.extend([r as u8, g as u8, b as u8]);
        }
        encoder.set_palette(colours);
    } else {
        encoder.set_color(png::ColorType::Grayscale);
    }
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(values).expect("data");
}

/// A label map of `background` with a `label` rectangle and a one-pixel border of `border`.
fn rectangle_mask(
    w: u32,
    h: u32,
    rect: [u32; 4],
    background: u8,
    label: u8,
    border: u8,
) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let inside = x >= rect[0] && x < rect[2] && y >= rect[1] && y < rect[3];
            let edge =
                inside && (x == rect[0] || x == rect[2] - 1 || y == rect[1] || y == rect[3] - 1);
            out.push(if edge {
                border
            } else if inside {
                label
            } else {
                background
            });
        }
    }
    out
}

fn main() {
    // VOC: 000001 (48×32, a dog and a difficult person), 000002 (40×40, a cat).
    save(&picture(48, 32, 1), "voc/VOC2007/JPEGImages/000001.jpg");
    save(&picture(40, 40, 2), "voc/VOC2007/JPEGImages/000002.jpg");
    save_labels(
        &rectangle_mask(48, 32, [10, 5, 40, 30], 0, 12, 255),
        48,
        32,
        true,
        "voc/VOC2007/SegmentationClass/000001.png",
    );
    save_labels(
        &rectangle_mask(40, 40, [4, 4, 20, 36], 0, 8, 255),
        40,
        40,
        true,
        "voc/VOC2007/SegmentationClass/000002.png",
    );
    // COCO: train a.jpg (40×30), b.jpg (32×32); val c.jpg (36×24).
    save(&picture(40, 30, 3), "coco/train/a.jpg");
    save(&picture(32, 32, 4), "coco/train/b.jpg");
    save(&picture(36, 24, 5), "coco/val/c.jpg");
    // Cityscapes: 32×16 frames; label ids 7 (road) below, 26 (car) box, 0 elsewhere.
    for (split, city, seed) in [("train", "aachen", 6), ("val", "frankfurt", 7)] {
        let stem = format!("{city}_000000_000019");
        save(
            &picture(32, 16, seed),
            &format!("cityscapes/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"),
        );
        let mut ids = rectangle_mask(32, 16, [0, 8, 32, 16], 0, 7, 7);
        for y in 9..13 {
            for x in 4..12 {
                ids[y * 32 + x] = 26;
            }
        }
        save_labels(
            &ids,
            32,
            16,
            false,
            &format!("cityscapes/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png"),
        );
    }
    // CelebA: three aligned 40×48 faces.
    for i in 1..=3 {
        save(
            &picture(40, 48, 7 + i),
            &format!("celeba/img_align_celeba/00000{i}.jpg"),
        );
    }
    // 300-W: one training and one test face, 64×64.
    save(&picture(64, 64, 11), "300w/train/indoor_001.png");
    save(&picture(64, 64, 12), "300w/test/outdoor_001.jpg");
    println!("fixtures written under {ROOT}");
}
