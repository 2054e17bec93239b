//! The built-in dataset: deterministic, seeded scenes generated on the fly (no download, no
//! files), with the ground truth every task of the project needs.
//!
//! * [`SyntheticObjects`]: one main object of one of ten shape classes, plus up to two smaller
//!   distractor objects, on a varied background (muted gradients, faint stripes, noise). The main
//!   object covers most of the image, as in object-centric photographs: with a large textured
//!   background, instance discrimination learns to recognise backgrounds rather than objects. The
//!   class is the main object's *shape*; colours, sizes, positions and rotations are random, so a
//!   model has to learn shape rather than colour. No class can be made into another by a
//!   rotation, a scaling, a flip or the augmentations' aspect change (`shapes.rs` tests it). Each
//!   [`Scene`] carries the class label, every object's box and a per-pixel class mask (for
//!   detection and segmentation).
//! * [`SyntheticFaces`]: a face-like variant (head, hair, eyes, nose, mouth) whose label is an
//!   identity and which carries the 5 landmarks of the MAFL protocol (eyes, nose, mouth corners).
//!   An identity is an appearance (skin, hair, eye and lip colours, hairline, freckles, a mark,
//!   glasses, a beard); pose, face shape, eye gap and mouth and nose positions are drawn per
//!   image, so the landmarks carry no identity (`faces.rs` tests it).
//! * [`SyntheticTextures`]: full-frame two-colour patterns of ten families (stripes, checks,
//!   dots, rings, …), labelled by family: a pretraining corpus out of the other two's domain.
//!
//! Sample `i` of a split depends only on `(seed, split, i)`, so it can be regenerated in any
//! order, by any worker, after a resume.

mod faces;
mod objects;
mod shapes;
mod textures;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Image;

pub use self::faces::{Face, LANDMARK_NAMES, SyntheticFaces};
pub use self::objects::{OBJECT_CLASSES, Scene, SceneObject, SyntheticObjects};
pub use self::textures::{SyntheticTextures, TEXTURE_CLASSES};

/// Independent random streams for the splits, so validation never repeats training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Train = 1,
    Val = 2,
}

/// Seeds a generator from a seed and a path of integers (splitmix64 over the path).
pub fn rng_for(seed: u64, path: &[u64]) -> ChaCha8Rng {
    let mut state = seed ^ 0x5851_F42D_4C95_7F2D;
    for &part in path {
        state = splitmix64(state ^ splitmix64(part.wrapping_add(0x9E37_79B9_7F4A_7C15)));
    }
    ChaCha8Rng::seed_from_u64(state)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How a generated dataset describes itself: `synthetic WHAT (Train split, N images of Spx,
/// LABELS, seed K)`.
pub(super) fn describe(
    what: &str,
    stream: Stream,
    len: usize,
    size: usize,
    labels: &str,
    seed: u64,
) -> String {
    format!("synthetic {what} ({stream:?} split, {len} images of {size}px, {labels}, seed {seed})")
}

pub(super) fn pixel_range(lo: f32, hi: f32, limit: usize) -> std::ops::Range<usize> {
    let lo = lo.floor().max(0.0) as usize;
    let hi = (hi.ceil().max(0.0) as usize).min(limit);
    lo.min(hi)..hi
}

pub(super) fn random_colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    hsv_to_rgb(
        rng.random_range(0.0..1.0),
        rng.random_range(0.4..1.0),
        rng.random_range(0.3..1.0),
    )
}

/// A low-saturation colour for backgrounds.
pub(super) fn muted_colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    hsv_to_rgb(
        rng.random_range(0.0..1.0),
        rng.random_range(0.0..0.35),
        rng.random_range(0.2..0.9),
    )
}

/// HSV (all in `[0, 1]`) to RGB.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// A two-colour gradient in a random direction, with optional stripes.
pub(super) fn background(rng: &mut ChaCha8Rng, size: usize) -> Image {
    let a = muted_colour(rng);
    let b = muted_colour(rng);
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let (dx, dy) = (angle.cos(), angle.sin());
    let stripes = rng.random_bool(0.5);
    let frequency = rng.random_range(2.0..6.0) * std::f32::consts::TAU / size as f32;
    let stripe_angle = rng.random_range(0.0..std::f32::consts::PI);
    let (sx, sy) = (stripe_angle.cos(), stripe_angle.sin());
    let amplitude = if stripes {
        rng.random_range(0.03..0.1)
    } else {
        0.0
    };
    let mut image = Image::new(size, size);
    let half = size as f32 / 2.0;
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 - half, y as f32 - half);
            let t = ((fx * dx + fy * dy) / size as f32 + 0.5).clamp(0.0, 1.0);
            let stripe = amplitude * ((fx * sx + fy * sy) * frequency).sin();
            let rgb = std::array::from_fn(|c| (a[c] + (b[c] - a[c]) * t + stripe).clamp(0.0, 1.0));
            image.set_pixel(x, y, rgb);
        }
    }
    image
}

pub(super) fn add_noise(rng: &mut ChaCha8Rng, image: &mut Image) {
    let amplitude = rng.random_range(0.0..0.06);
    for v in &mut image.data {
        *v = (*v + rng.random_range(-amplitude..=amplitude)).clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_splits_differ() {
        let train = SyntheticObjects::new(7, Stream::Train, 20, 32);
        let again = SyntheticObjects::new(7, Stream::Train, 20, 32);
        let val = SyntheticObjects::new(7, Stream::Val, 20, 32);
        assert_eq!(train.scene(3).image, again.scene(3).image);
        assert_ne!(train.scene(3).image, val.scene(3).image);
        assert_ne!(train.scene(3).image, train.scene(13).image);
    }

    #[test]
    fn ground_truth_is_consistent() {
        let data = SyntheticObjects::new(1, Stream::Train, 50, 48);
        for i in 0..50 {
            let scene = data.scene(i);
            assert_eq!(scene.label, i % OBJECT_CLASSES.len());
            let main = scene.objects.last().unwrap();
            assert_eq!(main.class, scene.label);
            let [x0, y0, x1, y1] = main.bbox;
            assert!(x0 >= 0.0 && y0 >= 0.0 && x1 <= 48.0 && y1 <= 48.0 && x1 > x0 && y1 > y0);
            // The main object is drawn last, so its class fills most of its box in the mask.
            let mut hits = 0;
            for y in y0 as usize..y1 as usize {
                for x in x0 as usize..x1 as usize {
                    hits += (scene.mask[y * 48 + x] == main.class as u8 + 1) as usize;
                }
            }
            assert!(hits * 4 >= ((x1 - x0) * (y1 - y0)) as usize, "scene {i}");
            assert!(scene.image.data.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn faces_keep_identity_traits_and_landmark_order() {
        let faces = SyntheticFaces::new(3, Stream::Train, 40, 64, 4);
        for i in 0..40 {
            let face = faces.face(i);
            assert_eq!(face.identity, i % 4);
            let [le, re, nose, lm, rm] = face.landmarks;
            // Rotation is at most 20°, so left stays left and eyes stay above the mouth.
            assert!(le[0] < re[0] && lm[0] < rm[0]);
            assert!(le[1] < lm[1] && re[1] < rm[1] && nose[1] < (lm[1] + rm[1]) / 2.0);
            for p in face.landmarks {
                assert!(p[0] > 0.0 && p[0] < 64.0 && p[1] > 0.0 && p[1] < 64.0);
            }
        }
    }
}
