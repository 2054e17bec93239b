//! Image augmentations: the MoCo v2 "aug+" pipeline, the MoCo v1 pipeline, the supervised
//! baseline's crop-and-flip, the cumulative ablation steps of the paper (flip → +crop →
//! +colour → +grayscale → +blur) and the evaluation transform.
//!
//! Each operation follows its torchvision counterpart (`RandomResizedCrop`, `ColorJitter` with
//! its random order of the four adjustments, `RandomGrayscale`, MoCo's `GaussianBlur`,
//! `RandomHorizontalFlip`). One deliberate difference: the blur's σ range ([0.1, 2.0] at 224 px)
//! is scaled with the output size, but not below half of it (see [`blur_sigma`]): σ = 2 would
//! erase a 16 px image, and σ scaled all the way (≤ 0.14 px at 16 px) would not blur at all.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::synthetic::hsv_to_rgb;

/// Colour jitter strengths, as torchvision's `ColorJitter(brightness, contrast, saturation, hue)`,
/// applied with probability `p`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
    pub p: f32,
}

/// A training augmentation pipeline. Every field is optional so ablations can switch parts off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// `RandomResizedCrop` area range (fraction of the image); `None` resizes the whole image.
    pub crop_scale: Option<[f32; 2]>,
    pub color_jitter: Option<ColorJitter>,
    /// Probability of converting to grayscale.
    pub grayscale_p: f32,
    /// Probability of a Gaussian blur with σ ∈ [0.1, 2.0] px at 224 px (see [`blur_sigma`]).
    pub blur_p: f32,
    /// Random horizontal flip with probability 0.5.
    pub flip: bool,
}

/// Named pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentPreset {
    /// MoCo v2: crop (0.2–1), jitter (0.4, 0.4, 0.4, 0.1) p = 0.8, grayscale 0.2, blur 0.5, flip.
    AugPlus,
    /// MoCo v1: crop (0.2–1), grayscale 0.2, jitter (0.4, 0.4, 0.4, 0.4) always, flip.
    V1,
    /// The standard supervised ImageNet recipe: crop (0.08–1), flip.
    Supervised,
    /// Ablation step 1: flip only (whole image resized).
    Flip,
    /// Ablation step 2: flip + crop (0.2–1).
    Crop,
    /// Ablation step 3: + colour jitter.
    Color,
    /// Ablation step 4: + grayscale (the last step, + blur, is `aug-plus`).
    Grayscale,
}

impl AugmentPreset {
    pub const ALL: [AugmentPreset; 7] = [
        AugmentPreset::AugPlus,
        AugmentPreset::V1,
        AugmentPreset::Supervised,
        AugmentPreset::Flip,
        AugmentPreset::Crop,
        AugmentPreset::Color,
        AugmentPreset::Grayscale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AugmentPreset::AugPlus => "aug-plus",
            AugmentPreset::V1 => "v1",
            AugmentPreset::Supervised => "supervised",
            AugmentPreset::Flip => "flip",
            AugmentPreset::Crop => "crop",
            AugmentPreset::Color => "color",
            AugmentPreset::Grayscale => "grayscale",
        }
    }

    pub fn pipeline(self) -> Augmentation {
        let moco_jitter = ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1,
            p: 0.8,
        };
        let none = Augmentation {
            crop_scale: None,
            color_jitter: None,
            grayscale_p: 0.0,
            blur_p: 0.0,
            flip: true,
        };
        let crop = Augmentation {
            crop_scale: Some([0.2, 1.0]),
            ..none
        };
        let color = Augmentation {
            color_jitter: Some(moco_jitter),
            ..crop
        };
        let gray = Augmentation {
            grayscale_p: 0.2,
            ..color
        };
        match self {
            AugmentPreset::Flip => none,
            AugmentPreset::Crop => crop,
            AugmentPreset::Color => color,
            AugmentPreset::Grayscale => gray,
            AugmentPreset::AugPlus => Augmentation {
                blur_p: 0.5,
                ..gray
            },
            AugmentPreset::V1 => Augmentation {
                color_jitter: Some(ColorJitter {
                    hue: 0.4,
                    p: 1.0,
                    ..moco_jitter
                }),
                ..gray
            },
            AugmentPreset::Supervised => Augmentation {
                crop_scale: Some([0.08, 1.0]),
                ..none
            },
        }
    }
}

impl std::str::FromStr for AugmentPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AugmentPreset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = AugmentPreset::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown augmentation '{s}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

impl Augmentation {
    /// Produces one random view of `image`, `size × size` pixels.
    ///
    /// Each step draws from its own stream, seeded by one draw of `rng` in a fixed order
    /// (crop, jitter, grayscale, blur, flip) whether or not the step is switched on. So two
    /// pipelines that differ by one step make the same draws for every other step: the
    /// ablation's arms see the same crops and flips, and their views differ only by the step
    /// that was added.
    pub fn apply(&self, image: &Image, size: usize, rng: &mut ChaCha8Rng) -> Image {
        let mut streams: [ChaCha8Rng; 5] =
            std::array::from_fn(|_| ChaCha8Rng::seed_from_u64(rng.random()));
        let [crop_rng, jitter_rng, gray_rng, blur_rng, flip_rng] = &mut streams;
        let mut out = match self.crop_scale {
            Some(scale) => {
                let region = random_resized_crop_region(image, scale, crop_rng);
                image.resample(region, size, size)
            }
            None => image.resize(size, size),
        };
        if let Some(jitter) = &self.color_jitter
            && jitter_rng.random::<f32>() < jitter.p
        {
            color_jitter(&mut out, jitter, jitter_rng);
        }
        if gray_rng.random::<f32>() < self.grayscale_p {
            grayscale(&mut out);
        }
        if blur_rng.random::<f32>() < self.blur_p {
            out = gaussian_blur(&out, blur_sigma(size, blur_rng));
        }
        if self.flip && flip_rng.random_bool(0.5) {
            out.flip_horizontal();
        }
        out
    }
}

/// MoCo's blur σ, uniform in [0.1, 2.0] px at 224 px, scaled with the output size but never
/// below half that range: a 16 or 32 px view is blurred with σ up to 1 px. Scaled all the way,
/// σ would stay under 0.3 px there and the blur would change almost nothing.
fn blur_sigma(size: usize, rng: &mut ChaCha8Rng) -> f32 {
    let scale = (size as f32 / 224.0).max(0.5);
    rng.random_range(0.1..2.0) * scale
}

/// The evaluation transform: resize the shorter side to `size · 8/7` (256 for 224) and take the
/// central `size × size` crop.
pub fn center_view(image: &Image, size: usize) -> Image {
    let short = (size as f32 * 8.0 / 7.0).round();
    let scale = short / image.width.min(image.height) as f32;
    // The crop, mapped back to source pixels.
    let w = size as f32 / scale;
    let x0 = (image.width as f32 - w) / 2.0;
    let y0 = (image.height as f32 - w) / 2.0;
    image.resample([x0, y0, w, w], size, size)
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and aspect ratio
/// (log-uniform in [3/4, 4/3]), then a central crop of the clamped ratio.
pub fn random_resized_crop_region(
    image: &Image,
    scale: [f32; 2],
    rng: &mut ChaCha8Rng,
) -> [f32; 4] {
    let (width, height) = (image.width as f32, image.height as f32);
    let area = width * height;
    let (log_lo, log_hi) = ((3.0f32 / 4.0).ln(), (4.0f32 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale[0]..=scale[1]);
        let ratio = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * ratio).sqrt().round();
        let h = (target / ratio).sqrt().round();
        if w > 0.0 && h > 0.0 && w <= width && h <= height {
            let x0 = rng.random_range(0..=(width - w) as usize) as f32;
            let y0 = rng.random_range(0..=(height - h) as usize) as f32;
            return [x0, y0, w, h];
        }
    }
    let ratio = width / height;
    let (w, h) = if ratio < 3.0 / 4.0 {
        (width, (width / (3.0 / 4.0)).round())
    } else if ratio > 4.0 / 3.0 {
        ((height * 4.0 / 3.0).round(), height)
    } else {
        (width, height)
    };
    [(width - w) / 2.0, (height - h) / 2.0, w, h]
}

fn luminance(rgb: [f32; 3]) -> f32 {
    0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
}

/// The four adjustments of `ColorJitter`, in random order, each with a random factor.
pub fn color_jitter(image: &mut Image, jitter: &ColorJitter, rng: &mut ChaCha8Rng) {
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    for op in order {
        match op {
            0 if jitter.brightness > 0.0 => {
                let f = factor(jitter.brightness, rng);
                image
                    .data
                    .iter_mut()
                    .for_each(|v| *v = (*v * f).clamp(0.0, 1.0));
            }
            1 if jitter.contrast > 0.0 => {
                let f = factor(jitter.contrast, rng);
                let pixels = image.data.chunks_exact(3).count().max(1) as f32;
                let mean = image
                    .data
                    .chunks_exact(3)
                    .map(|p| luminance([p[0], p[1], p[2]]))
                    .sum::<f32>()
                    / pixels;
                image
                    .data
                    .iter_mut()
                    .for_each(|v| *v = (mean + (*v - mean) * f).clamp(0.0, 1.0));
            }
            2 if jitter.saturation > 0.0 => {
                let f = factor(jitter.saturation, rng);
                for p in image.data.chunks_exact_mut(3) {
                    let gray = luminance([p[0], p[1], p[2]]);
                    p.iter_mut()
                        .for_each(|v| *v = (gray + (*v - gray) * f).clamp(0.0, 1.0));
                }
            }
            3 if jitter.hue > 0.0 => {
                let shift = rng.random_range(-jitter.hue..=jitter.hue);
                for p in image.data.chunks_exact_mut(3) {
                    let [h, s, v] = rgb_to_hsv([p[0], p[1], p[2]]);
                    p.copy_from_slice(&hsv_to_rgb(h + shift, s, v));
                }
            }
            _ => {}
        }
    }
}

/// A factor uniform in `[max(0, 1 − s), 1 + s]`.
fn factor(strength: f32, rng: &mut ChaCha8Rng) -> f32 {
    rng.random_range((1.0 - strength).max(0.0)..=1.0 + strength)
}

fn rgb_to_hsv([r, g, b]: [f32; 3]) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let h = if delta <= f32::EPSILON {
        0.0
    } else if max == r {
        ((g - b) / delta).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / delta + 2.0) / 6.0
    } else {
        ((r - g) / delta + 4.0) / 6.0
    };
    let s = if max <= f32::EPSILON {
        0.0
    } else {
        delta / max
    };
    [h, s, max]
}

fn grayscale(image: &mut Image) {
    for p in image.data.chunks_exact_mut(3) {
        let gray = luminance([p[0], p[1], p[2]]);
        p.fill(gray);
    }
}

/// Separable Gaussian blur with a kernel of radius ⌈3σ⌉ and clamped edges.
pub fn gaussian_blur(image: &Image, sigma: f32) -> Image {
    if sigma <= 0.0 {
        return image.clone();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let (w, h) = (image.width as isize, image.height as isize);
    let pass = |src: &Image, horizontal: bool| {
        let mut out = Image::new(src.width, src.height);
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0f32; 3];
                for (k, weight) in kernel.iter().enumerate() {
                    let d = k as isize - radius;
                    let (sx, sy) = if horizontal {
                        ((x + d).clamp(0, w - 1), y)
                    } else {
                        (x, (y + d).clamp(0, h - 1))
                    };
                    let p = src.pixel(sx as usize, sy as usize);
                    for c in 0..3 {
                        acc[c] += weight * p[c];
                    }
                }
                out.set_pixel(x as usize, y as usize, acc);
            }
        }
        out
    };
    pass(&pass(image, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::rng_for;

    fn gradient(w: usize, h: usize) -> Image {
        let mut img = Image::new(w, h);
        for y in 0..h {
            for x in 0..w {
                img.set_pixel(x, y, [x as f32 / w as f32, y as f32 / h as f32, 0.5]);
            }
        }
        img
    }

    #[test]
    fn every_preset_gives_the_requested_size_and_valid_values() {
        let img = gradient(40, 30);
        let mut rng = rng_for(0, &[1]);
        for preset in AugmentPreset::ALL {
            for _ in 0..20 {
                let out = preset.pipeline().apply(&img, 24, &mut rng);
                assert_eq!((out.width, out.height), (24, 24));
                assert!(
                    out.data
                        .iter()
                        .all(|v| (0.0..=1.0).contains(v) && v.is_finite())
                );
            }
        }
    }

    #[test]
    fn views_depend_only_on_the_rng_seed() {
        let img = gradient(32, 32);
        let aug = AugmentPreset::AugPlus.pipeline();
        let a = aug.apply(&img, 16, &mut rng_for(5, &[9]));
        let b = aug.apply(&img, 16, &mut rng_for(5, &[9]));
        let c = aug.apply(&img, 16, &mut rng_for(5, &[10]));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn operations_match_their_definitions() {
        let mut img = gradient(4, 2);
        let original = img.clone();
        img.flip_horizontal();
        assert_eq!(img.pixel(0, 1), original.pixel(3, 1));
        img.flip_horizontal();
        assert_eq!(img, original);

        grayscale(&mut img);
        let p = img.pixel(2, 1);
        assert!(p[0] == p[1] && p[1] == p[2]);

        // Blurring a constant image changes nothing; blurring keeps the mean of a gradient.
        let mut flat = Image::new(9, 9);
        flat.data.fill(0.3);
        assert!(
            gaussian_blur(&flat, 1.5)
                .data
                .iter()
                .all(|v| (v - 0.3).abs() < 1e-5)
        );

        for rgb in [[0.2, 0.5, 0.9], [0.9, 0.1, 0.1], [0.4, 0.4, 0.4]] {
            let [h, s, v] = rgb_to_hsv(rgb);
            let back = hsv_to_rgb(h, s, v);
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 1e-5, "{rgb:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn center_view_of_a_square_image_keeps_its_centre() {
        let img = gradient(64, 64);
        let out = center_view(&img, 28);
        assert_eq!((out.width, out.height), (28, 28));
        let centre = out.pixel(14, 14);
        assert!((centre[0] - 0.5).abs() < 0.05 && (centre[1] - 0.5).abs() < 0.05);
    }
}
