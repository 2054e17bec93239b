//! [`SyntheticTextures`]: full-frame two-colour patterns of ten families (stripes, checks, dots,
//! …) at any orientation, scale and colour, with no objects and no faces.
//!
//! A pretraining corpus out of the transfer tasks' domain: nothing in it looks like the scenes'
//! shapes or the faces, as the paper's other pretraining corpora differ from VOC and MAFL.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Stream, add_noise, describe, random_colour, rng_for};
use crate::{DataError, Dataset, Image, check_index};

/// The texture families of [`SyntheticTextures`], in label order.
pub const TEXTURE_CLASSES: [&str; 10] = [
    "stripes", "checks", "dots", "rings", "waves", "grid", "blobs", "zigzag", "sunburst", "bricks",
];

/// The texture dataset.
#[derive(Debug, Clone)]
pub struct SyntheticTextures {
    seed: u64,
    stream: Stream,
    len: usize,
    size: usize,
    classes: Vec<String>,
}

impl SyntheticTextures {
    pub fn new(seed: u64, stream: Stream, len: usize, size: usize) -> Self {
        Self {
            seed,
            stream,
            len,
            size: size.max(8),
            classes: TEXTURE_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Texture `index`: its image and its family.
    pub fn texture(&self, index: usize) -> (Image, usize) {
        let class = index % TEXTURE_CLASSES.len();
        let mut rng = rng_for(self.seed, &[self.stream as u64, 2, index as u64]);
        let pattern = Pattern::random(&mut rng, class, self.size);
        // Two colours that stand apart, so that every pattern shows.
        let a = random_colour(&mut rng);
        let mut b = random_colour(&mut rng);
        for _ in 0..16 {
            if (0..3).map(|c| (a[c] - b[c]).abs()).sum::<f32>() > 0.6 {
                break;
            }
            b = random_colour(&mut rng);
        }
        let mut image = Image::new(self.size, self.size);
        for y in 0..self.size {
            for x in 0..self.size {
                // 2×2 supersampling keeps thin lines and small dots from aliasing away.
                let cover = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
                    .iter()
                    .filter(|(ox, oy)| pattern.on(x as f32 + ox, y as f32 + oy))
                    .count() as f32
                    / 4.0;
                image.set_pixel(x, y, std::array::from_fn(|c| a[c] + (b[c] - a[c]) * cover));
            }
        }
        add_noise(&mut rng, &mut image);
        (image, class)
    }
}

/// One family's pattern with its pose: `on` says whether a point shows the second colour.
struct Pattern {
    class: usize,
    /// Pattern frame: rotation and the period in pixels.
    cos: f32,
    sin: f32,
    period: f32,
    centre: [f32; 2],
    /// Family-specific shape parameter in `[0, 1)`.
    shape: f32,
    /// Random phases for the blobs.
    phases: [f32; 6],
}

impl Pattern {
    fn random(rng: &mut ChaCha8Rng, class: usize, size: usize) -> Self {
        let angle = rng.random_range(0.0..std::f32::consts::PI);
        let size = size as f32;
        Self {
            class,
            cos: angle.cos(),
            sin: angle.sin(),
            period: rng.random_range(0.18..0.4) * size,
            centre: [rng.random_range(0.0..size), rng.random_range(0.0..size)],
            shape: rng.random_range(0.0..1.0),
            phases: std::array::from_fn(|_| rng.random_range(0.0..std::f32::consts::TAU)),
        }
    }

    fn on(&self, x: f32, y: f32) -> bool {
        use std::f32::consts::TAU;
        let (dx, dy) = (x - self.centre[0], y - self.centre[1]);
        // Rotated and in periods.
        let u = (dx * self.cos + dy * self.sin) / self.period;
        let v = (-dx * self.sin + dy * self.cos) / self.period;
        let frac = |t: f32| t - t.floor();
        match self.class {
            0 => frac(u) < 0.5,
            1 => (frac(u) < 0.5) != (frac(v) < 0.5),
            2 => {
                let (fu, fv) = (frac(u) - 0.5, frac(v) - 0.5);
                fu * fu + fv * fv < (0.2 + 0.12 * self.shape).powi(2)
            }
            3 => frac((u * u + v * v).sqrt()) < 0.5,
            4 => frac(u + 0.25 * (TAU * v * 0.5).sin()) < 0.5,
            5 => frac(u) < 0.15 || frac(v) < 0.15,
            6 => {
                let wave = |k: usize, a: f32, b: f32| (a * u + b * v + self.phases[k]).sin();
                wave(0, 2.1, 0.7) + wave(1, -0.9, 1.8) + wave(2, 1.3, -1.6) > 0.0
            }
            7 => frac(u + (frac(v) - 0.5).abs()) < 0.5,
            8 => {
                let rays = 6.0 + (self.shape * 6.0).floor();
                frac(v.atan2(u) / TAU * rays) < 0.5
            }
            9 => {
                let row = (v * 2.0).floor();
                let shift = if row.rem_euclid(2.0) == 0.0 { 0.0 } else { 0.5 };
                frac(v * 2.0) < 0.12 || frac(u + shift) < 0.08
            }
            _ => false,
        }
    }
}

impl Dataset for SyntheticTextures {
    fn len(&self) -> usize {
        self.len
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn get(&self, index: usize) -> Result<(Image, i64), DataError> {
        check_index(index, self.len)?;
        let (image, class) = self.texture(index);
        Ok((image, class as i64))
    }

    fn describe(&self) -> String {
        let classes = format!("{} classes", TEXTURE_CLASSES.len());
        describe(
            "textures",
            self.stream,
            self.len,
            self.size,
            &classes,
            self.seed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textures_are_deterministic_labelled_and_two_coloured() {
        let train = SyntheticTextures::new(3, Stream::Train, 40, 32);
        let val = SyntheticTextures::new(3, Stream::Val, 40, 32);
        for i in 0..40 {
            let (image, class) = train.texture(i);
            assert_eq!(class, i % 10);
            assert_eq!(image, train.texture(i).0);
            assert_ne!(image, val.texture(i).0);
            assert!(image.data.iter().all(|v| (0.0..=1.0).contains(v)));
            // Every family shows both colours somewhere: no flat images.
            let first = image.pixel(0, 0);
            let spread = image
                .data
                .chunks(3)
                .map(|p| (0..3).map(|c| (p[c] - first[c]).abs()).sum::<f32>())
                .fold(0.0f32, f32::max);
            assert!(
                spread > 0.4,
                "texture {i} ({}) is flat",
                TEXTURE_CLASSES[class]
            );
        }
    }
}
