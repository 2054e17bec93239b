//! Draws what `serve` answered onto the images it was sent: the scene with its segmentation
//! mask (a translucent colour per class) and its detections (boxes with class and score), beside
//! the face with its named landmarks. scripts/pipeline.sh ends with this picture.
//!
//! ```text
//! annotate --scene scene.png --detect detect.json --segment segment.json \
//!          --face face.png --landmarks landmarks.json --out result.png
//! ```
//!
//! `segment.json` must hold a PNG mask (`/v1/segment`'s default format).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Parser;
use image::{Rgb, RgbImage};
use serde::Deserialize;

#[derive(Parser)]
#[command(about = "Draw serve's detections, mask and landmarks onto the images")]
struct Args {
    #[arg(long)]
    scene: PathBuf,
    /// `/v1/detect`'s answer for the scene.
    #[arg(long)]
    detect: PathBuf,
    /// `/v1/segment`'s answer for the scene (PNG mask).
    #[arg(long)]
    segment: PathBuf,
    #[arg(long)]
    face: PathBuf,
    /// `/v1/landmarks`' answer for the face.
    #[arg(long)]
    landmarks: PathBuf,
    /// Pixels of output per input pixel (the samples are small).
    #[arg(long, default_value_t = 4)]
    scale: u32,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Deserialize)]
struct Detections {
    detections: Vec<Detection>,
}

#[derive(Deserialize)]
struct Detection {
    /// `[x, y, width, height]` in pixels.
    bbox: [f32; 4],
    score: f32,
    class_id: usize,
    class_name: String,
}

#[derive(Deserialize)]
struct Segmentation {
    classes: Vec<String>,
    mask: Mask,
}

#[derive(Deserialize)]
struct Mask {
    format: String,
    data: String,
}

#[derive(Deserialize)]
struct Landmarks {
    points: Vec<Point>,
}

#[derive(Deserialize)]
struct Point {
    name: String,
    x: f32,
    y: f32,
}

/// The drawing conventions the demo page uses too (colours per class, mask opacity, line width,
/// dot radius, label band): `serve/assets/drawing.json`, compiled in.
#[derive(Deserialize)]
struct Style {
    palette: Vec<[u8; 3]>,
    mask_opacity: f32,
    box_line_width: f32,
    landmark_radius: f32,
    label_background: [u8; 3],
}

impl Style {
    fn load() -> Result<Self> {
        let style: Self = serde_json::from_str(include_str!("../assets/drawing.json"))
            .context("serve/assets/drawing.json is not a drawing style")?;
        if style.palette.is_empty() {
            bail!("serve/assets/drawing.json has an empty palette");
        }
        Ok(style)
    }

    /// Detection class k, mask class k + 1 and landmark k all take this colour.
    fn colour(&self, index: usize) -> Rgb<u8> {
        Rgb(self.palette[index % self.palette.len()])
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not serve's answer", path.display()))
}

fn read_image(path: &Path, scale: u32) -> Result<RgbImage> {
    let image = image::open(path)
        .with_context(|| format!("reading the image {}", path.display()))?
        .to_rgb8();
    Ok(image::imageops::resize(
        &image,
        image.width() * scale,
        image.height() * scale,
        image::imageops::FilterType::Nearest,
    ))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.scale == 0 || args.scale > 16 {
        bail!("--scale must be between 1 and 16");
    }
    let s = args.scale as f32;
    let style = Style::load()?;
    let mut scene = read_image(&args.scene, args.scale)?;
    let segmentation: Segmentation = read_json(&args.segment)?;
    if segmentation.mask.format != "png" {
        bail!(
            "{}: the mask must be a PNG (ask /v1/segment without ?format=rle)",
            args.segment.display()
        );
    }
    let png = base64::engine::general_purpose::STANDARD
        .decode(&segmentation.mask.data)
        .context("the mask is not base64")?;
    let mask = image::load_from_memory(&png)
        .context("the mask is not a PNG")?
        .to_luma8();
    let mask = image::imageops::resize(
        &mask,
        scene.width(),
        scene.height(),
        image::imageops::FilterType::Nearest,
    );
    for (pixel, class) in scene.pixels_mut().zip(mask.pixels()) {
        if class[0] > 0 {
            blend(
                pixel,
                style.colour(class[0] as usize - 1),
                style.mask_opacity,
            );
        }
    }
    let detections: Detections = read_json(&args.detect)?;
    // Lowest score first, so that where boxes coincide the best one's label is drawn on top.
    let mut by_score: Vec<&Detection> = detections.detections.iter().collect();
    by_score.sort_by(|a, b| a.score.total_cmp(&b.score));
    for d in by_score {
        let [x, y, w, h] = d.bbox.map(|v| v * s);
        let c = style.colour(d.class_id);
        rectangle(&mut scene, [x, y, x + w, y + h], style.box_line_width, c);
        label(
            &mut scene,
            x,
            y - 10.0,
            &format!("{} {:.2}", d.class_name, d.score),
            c,
            &style,
        );
    }
    let mut face = read_image(&args.face, args.scale)?;
    let landmarks: Landmarks = read_json(&args.landmarks)?;
    for (i, p) in landmarks.points.iter().enumerate() {
        let (x, y) = (p.x * s, p.y * s);
        let c = style.colour(i);
        disc(&mut face, x, y, style.landmark_radius, c);
        label(&mut face, x + 6.0, y - 4.0, &p.name, c, &style);
    }
    // Legend under the scene: the colours of the classes the mask contains.
    let present: Vec<usize> = (1..segmentation.classes.len())
        .filter(|&c| mask.pixels().any(|p| p[0] as usize == c))
        .collect();
    let legend: Vec<(usize, &String)> = present
        .iter()
        .map(|&c| (c - 1, &segmentation.classes[c]))
        .collect();
    let legend_height = 12 * legend.len() as u32 + 8;
    let width = scene.width() + face.width() + 8;
    let height = scene.height().max(face.height()) + legend_height;
    let mut out = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    image::imageops::overlay(&mut out, &scene, 0, 0);
    image::imageops::overlay(&mut out, &face, (scene.width() + 8) as i64, 0);
    for (i, (index, name)) in legend.iter().enumerate() {
        let y = (scene.height() + 4 + 12 * i as u32) as f32;
        let c = style.colour(*index);
        fill(&mut out, [2.0, y, 12.0, y + 8.0], c);
        label(
            &mut out,
            16.0,
            y,
            &format!("mask: {name}"),
            Rgb([0, 0, 0]),
            &style,
        );
    }
    out.save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {} detections, {} landmarks",
        args.out.display(),
        detections.detections.len(),
        landmarks.points.len()
    );
    Ok(())
}

fn blend(pixel: &mut Rgb<u8>, c: Rgb<u8>, alpha: f32) {
    for (p, c) in pixel.0.iter_mut().zip(c.0) {
        *p = (*p as f32 * (1.0 - alpha) + c as f32 * alpha).round() as u8;
    }
}

fn put(image: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
        image.put_pixel(x as u32, y as u32, c);
    }
}

fn fill(image: &mut RgbImage, [x0, y0, x1, y1]: [f32; 4], c: Rgb<u8>) {
    for y in y0.round() as i64..y1.round() as i64 {
        for x in x0.round() as i64..x1.round() as i64 {
            put(image, x, y, c);
        }
    }
}

/// An outline `line` pixels wide, inside the box.
fn rectangle(image: &mut RgbImage, [x0, y0, x1, y1]: [f32; 4], line: f32, c: Rgb<u8>) {
    fill(image, [x0, y0, x1, y0 + line], c);
    fill(image, [x0, y1 - line, x1, y1], c);
    fill(image, [x0, y0, x0 + line, y1], c);
    fill(image, [x1 - line, y0, x1, y1], c);
}

fn disc(image: &mut RgbImage, cx: f32, cy: f32, r: f32, c: Rgb<u8>) {
    for y in (cy - r).floor() as i64..=(cy + r).ceil() as i64 {
        for x in (cx - r).floor() as i64..=(cx + r).ceil() as i64 {
            if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r {
                put(image, x, y, c);
            }
        }
    }
}

/// Text in the 8×8 bitmap font, on the style's band (white) so it reads over any background.
fn label(image: &mut RgbImage, x: f32, y: f32, text: &str, c: Rgb<u8>, style: &Style) {
    use font8x8::UnicodeFonts;
    let (x, y) = (x.max(0.0) as i64, y.max(0.0) as i64);
    fill(
        image,
        [
            x as f32,
            y as f32,
            (x + 8 * text.len() as i64 + 2) as f32,
            (y + 10) as f32,
        ],
        Rgb(style.label_background),
    );
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    put(image, x + 1 + 8 * i as i64 + col, y + 1 + row as i64, c);
                }
            }
        }
    }
}
