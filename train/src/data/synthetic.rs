//! The built-in dataset: deterministic, seeded scenes generated on the fly (no download, no
//! files), with the ground truth every task of the project needs.
//!
//! * [`SyntheticObjects`]: one main object of one of ten shape classes, plus up to two smaller
//!   distractor objects, on a varied background (muted gradients, faint stripes, noise). The main
//!   object covers most of the image, as in object-centric photographs: with a large textured
//!   background, instance discrimination learns to recognise backgrounds rather than objects. The class is the
//!   main object's *shape*; colours, sizes, positions and rotations are random, so a model has to
//!   learn shape rather than colour. Each [`Scene`] carries the class label, every object's box
//!   and a per-pixel class mask (for detection and segmentation).
//! * [`SyntheticFaces`]: a face-like variant (head, hair, eyes, nose, mouth) whose label is an
//!   identity (skin tone, hair colour, face shape, eye colour) and which carries the 5 landmarks
//!   of the MAFL protocol (eyes, nose, mouth corners) under random pose.
//!
//! Sample `i` of a split depends only on `(seed, split, i)`, so it can be regenerated in any
//! order, by any worker, after a resume.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::annotated::{DetectionSample, LandmarkSample, Object, SegmentationSample, TaskDataset};
use super::{DataError, Dataset, Image, check_index};

/// The shape classes of [`SyntheticObjects`], in label order.
pub const OBJECT_CLASSES: [&str; 10] = [
    "circle",
    "square",
    "triangle",
    "diamond",
    "cross",
    "ring",
    "star",
    "hexagon",
    "ellipse",
    "half-disc",
];

/// Names of the five landmarks of [`SyntheticFaces`], in the MAFL order.
pub const LANDMARK_NAMES: [&str; 5] =
    ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"];

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

/// One object drawn in a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneObject {
    /// Index into [`OBJECT_CLASSES`].
    pub class: usize,
    /// Tight box around the object's pixels: `[x0, y0, x1, y1]`, pixel edges (x1, y1 exclusive).
    pub bbox: [f32; 4],
}

/// A generated object scene with its ground truth.
#[derive(Debug, Clone)]
pub struct Scene {
    pub image: Image,
    /// Class of the main (largest) object: the classification label.
    pub label: usize,
    /// Every object, main object last (it is drawn on top).
    pub objects: Vec<SceneObject>,
    /// Per pixel: 0 for background, `class + 1` for an object (row-major, `width * height`).
    pub mask: Vec<u8>,
}

/// The object-scene dataset.
#[derive(Debug, Clone)]
pub struct SyntheticObjects {
    seed: u64,
    stream: Stream,
    len: usize,
    size: usize,
    object_classes: Vec<String>,
    segmentation_classes: Vec<String>,
}

impl SyntheticObjects {
    pub fn new(seed: u64, stream: Stream, len: usize, size: usize) -> Self {
        Self {
            seed,
            stream,
            len,
            size: size.max(8),
            object_classes: OBJECT_CLASSES.iter().map(|s| s.to_string()).collect(),
            segmentation_classes: std::iter::once("background")
                .chain(OBJECT_CLASSES)
                .map(str::to_string)
                .collect(),
        }
    }

    /// Generates scene `index` with its full ground truth.
    pub fn scene(&self, index: usize) -> Scene {
        let mut rng = rng_for(self.seed, &[self.stream as u64, 0, index as u64]);
        let size = self.size;
        let mut image = background(&mut rng, size);
        let mut mask = vec![0u8; size * size];
        let mut objects = Vec::new();
        let label = index % OBJECT_CLASSES.len();

        let distractors = rng.random_range(0..=2);
        let main_scale = rng.random_range(0.36..0.48) * size as f32;
        let main_centre = [
            rng.random_range(main_scale * 0.8..size as f32 - main_scale * 0.8),
            rng.random_range(main_scale * 0.8..size as f32 - main_scale * 0.8),
        ];
        for _ in 0..distractors {
            let scale = rng.random_range(0.10..0.18) * size as f32;
            let centre = [
                rng.random_range(scale..size as f32 - scale),
                rng.random_range(scale..size as f32 - scale),
            ];
            let gap = main_scale + scale;
            let (dx, dy) = (centre[0] - main_centre[0], centre[1] - main_centre[1]);
            if dx * dx + dy * dy < gap * gap * 0.8 {
                continue; // would hide behind the main object
            }
            let class = rng.random_range(0..OBJECT_CLASSES.len());
            let shape = Placed::random(&mut rng, class, centre, scale, &image);
            if let Some(bbox) = shape.draw(&mut image, &mut mask) {
                objects.push(SceneObject { class, bbox });
            }
        }
        let shape = Placed::random(&mut rng, label, main_centre, main_scale, &image);
        let bbox =
            shape
                .draw(&mut image, &mut mask)
                .unwrap_or([0.0, 0.0, size as f32, size as f32]);
        objects.push(SceneObject { class: label, bbox });
        add_noise(&mut rng, &mut image);
        Scene {
            image,
            label,
            objects,
            mask,
        }
    }
}

impl Dataset for SyntheticObjects {
    fn len(&self) -> usize {
        self.len
    }

    fn class_names(&self) -> &[String] {
        &self.object_classes
    }

    fn get(&self, index: usize) -> Result<(Image, i64), DataError> {
        check_index(index, self.len)?;
        let scene = self.scene(index);
        Ok((scene.image, scene.label as i64))
    }

    fn describe(&self) -> String {
        format!(
            "synthetic objects ({:?} split, {} images of {}px, {} classes, seed {})",
            self.stream,
            self.len,
            self.size,
            OBJECT_CLASSES.len(),
            self.seed
        )
    }
}

/// The scenes as a detection dataset: every object's tight box.
impl TaskDataset<DetectionSample> for SyntheticObjects {
    fn len(&self) -> usize {
        self.len
    }

    fn class_names(&self) -> &[String] {
        &self.object_classes
    }

    fn get(&self, index: usize) -> Result<DetectionSample, DataError> {
        check_index(index, self.len)?;
        let scene = self.scene(index);
        let objects = scene
            .objects
            .iter()
            .map(|o| Object {
                bbox: o.bbox,
                class: o.class,
                ignore: false,
            })
            .collect();
        Ok(DetectionSample {
            image: scene.image,
            objects,
        })
    }

    fn describe(&self) -> String {
        Dataset::describe(self)
    }
}

/// The scenes as a segmentation dataset: class 0 is background, then [`OBJECT_CLASSES`].
impl TaskDataset<SegmentationSample> for SyntheticObjects {
    fn len(&self) -> usize {
        self.len
    }

    fn class_names(&self) -> &[String] {
        &self.segmentation_classes
    }

    fn get(&self, index: usize) -> Result<SegmentationSample, DataError> {
        check_index(index, self.len)?;
        let scene = self.scene(index);
        Ok(SegmentationSample {
            image: scene.image,
            mask: scene.mask,
        })
    }

    fn describe(&self) -> String {
        Dataset::describe(self)
    }
}

/// A shape with its pose and colour.
struct Placed {
    class: usize,
    centre: [f32; 2],
    scale: f32,
    cos: f32,
    sin: f32,
    colour: [f32; 3],
}

impl Placed {
    fn random(
        rng: &mut ChaCha8Rng,
        class: usize,
        centre: [f32; 2],
        scale: f32,
        image: &Image,
    ) -> Self {
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
        let background = image.pixel(
            (centre[0] as usize).min(image.width - 1),
            (centre[1] as usize).min(image.height - 1),
        );
        // A colour that stands out from the background under it.
        let mut colour = random_colour(rng);
        for _ in 0..16 {
            let distance: f32 = (0..3).map(|c| (colour[c] - background[c]).abs()).sum();
            if distance > 0.6 {
                break;
            }
            colour = random_colour(rng);
        }
        Self {
            class,
            centre,
            scale,
            cos: angle.cos(),
            sin: angle.sin(),
            colour,
        }
    }

    /// Draws with 4× supersampled edges; returns the tight box of the covered pixels.
    fn draw(&self, image: &mut Image, mask: &mut [u8]) -> Option<[f32; 4]> {
        let reach = self.scale * 1.5;
        let x_range = pixel_range(self.centre[0] - reach, self.centre[0] + reach, image.width);
        let y_range = pixel_range(self.centre[1] - reach, self.centre[1] + reach, image.height);
        let mut bbox: Option<[f32; 4]> = None;
        for y in y_range {
            for x in x_range.clone() {
                let coverage = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
                    .iter()
                    .filter(|(ox, oy)| self.contains(x as f32 + ox, y as f32 + oy))
                    .count() as f32
                    / 4.0;
                if coverage == 0.0 {
                    continue;
                }
                let old = image.pixel(x, y);
                let mixed = std::array::from_fn(|c| old[c] + (self.colour[c] - old[c]) * coverage);
                image.set_pixel(x, y, mixed);
                if coverage >= 0.5 {
                    mask[y * image.width + x] = self.class as u8 + 1;
                    let b =
                        bbox.get_or_insert([x as f32, y as f32, x as f32 + 1.0, y as f32 + 1.0]);
                    b[0] = b[0].min(x as f32);
                    b[1] = b[1].min(y as f32);
                    b[2] = b[2].max(x as f32 + 1.0);
                    b[3] = b[3].max(y as f32 + 1.0);
                }
            }
        }
        bbox
    }

    fn contains(&self, px: f32, py: f32) -> bool {
        let dx = (px - self.centre[0]) / self.scale;
        let dy = (py - self.centre[1]) / self.scale;
        let u = dx * self.cos + dy * self.sin;
        let v = -dx * self.sin + dy * self.cos;
        shape_contains(self.class, u, v)
    }
}

/// Whether the point `(u, v)` of the shape's unit frame lies inside shape `class`.
fn shape_contains(class: usize, u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    match class {
        0 => r <= 1.0,
        1 => u.abs().max(v.abs()) <= 0.8,
        2 => v <= 0.7 && v >= 1.9 * u.abs() - 1.0,
        3 => u.abs() + v.abs() <= 1.0,
        4 => (u.abs() <= 0.3 && v.abs() <= 0.95) || (v.abs() <= 0.3 && u.abs() <= 0.95),
        5 => (0.55..=1.0).contains(&r),
        6 => r <= 0.6 + 0.4 * (5.0 * v.atan2(u)).cos(),
        7 => (u.abs() * 0.866 + v.abs() * 0.5).max(v.abs()) <= 0.85,
        8 => u * u + (v / 0.5) * (v / 0.5) <= 1.0,
        9 => r <= 1.0 && v >= 0.0,
        _ => false,
    }
}

fn pixel_range(lo: f32, hi: f32, limit: usize) -> std::ops::Range<usize> {
    let lo = lo.floor().max(0.0) as usize;
    let hi = (hi.ceil().max(0.0) as usize).min(limit);
    lo.min(hi)..hi
}

fn random_colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    hsv_to_rgb(
        rng.random_range(0.0..1.0),
        rng.random_range(0.4..1.0),
        rng.random_range(0.3..1.0),
    )
}

/// A low-saturation colour for backgrounds.
fn muted_colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
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
fn background(rng: &mut ChaCha8Rng, size: usize) -> Image {
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

fn add_noise(rng: &mut ChaCha8Rng, image: &mut Image) {
    let amplitude = rng.random_range(0.0..0.06);
    for v in &mut image.data {
        *v = (*v + rng.random_range(-amplitude..=amplitude)).clamp(0.0, 1.0);
    }
}

/// A generated face with its landmarks.
#[derive(Debug, Clone)]
pub struct Face {
    pub image: Image,
    /// Identity label.
    pub identity: usize,
    /// `(x, y)` pixel coordinates in [`LANDMARK_NAMES`] order.
    pub landmarks: [[f32; 2]; 5],
}

/// The face-like dataset: identities under random pose, with 5 landmarks.
#[derive(Debug, Clone)]
pub struct SyntheticFaces {
    seed: u64,
    stream: Stream,
    len: usize,
    size: usize,
    identities: usize,
    identity_names: Vec<String>,
    landmark_names: Vec<String>,
}

impl SyntheticFaces {
    pub fn new(seed: u64, stream: Stream, len: usize, size: usize, identities: usize) -> Self {
        let identities = identities.max(1);
        Self {
            seed,
            stream,
            len,
            size: size.max(16),
            identities,
            identity_names: (0..identities).map(|i| format!("identity-{i}")).collect(),
            landmark_names: LANDMARK_NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Generates face `index`.
    pub fn face(&self, index: usize) -> Face {
        let identity = index % self.identities;
        // The identity's fixed traits come from a stream that ignores the split and index.
        let mut traits = rng_for(self.seed, &[0, 1, identity as u64]);
        let skin = hsv_to_rgb(
            traits.random_range(0.02..0.11),
            traits.random_range(0.25..0.7),
            traits.random_range(0.35..0.95),
        );
        let hair = random_colour(&mut traits);
        let eye_colour = hsv_to_rgb(traits.random_range(0.0..1.0), 0.8, 0.35);
        let aspect = traits.random_range(1.05..1.45);
        let eye_gap = traits.random_range(0.32..0.46);

        let mut rng = rng_for(self.seed, &[self.stream as u64, 1, index as u64]);
        let size = self.size as f32;
        let mut image = background(&mut rng, self.size);
        let radius = rng.random_range(0.26..0.34) * size;
        let centre = [
            size / 2.0 + rng.random_range(-0.08..0.08) * size,
            size / 2.0 + rng.random_range(-0.06..0.06) * size,
        ];
        let angle: f32 = rng.random_range(-0.35..0.35);
        let (cos, sin) = (angle.cos(), angle.sin());
        // Face frame → image: x right, y down, unit = radius.
        let to_image = |u: f32, v: f32| {
            [
                centre[0] + radius * (u * cos - v * sin),
                centre[1] + radius * (u * sin + v * cos),
            ]
        };
        let eye_y = -0.15;
        let mouth_y = 0.5;
        let mouth_half = rng.random_range(0.28..0.4);
        let landmarks = [
            to_image(-eye_gap, eye_y),
            to_image(eye_gap, eye_y),
            to_image(0.0, 0.18),
            to_image(-mouth_half, mouth_y),
            to_image(mouth_half, mouth_y),
        ];
        let reach = radius * aspect * 1.3;
        let xs = pixel_range(centre[0] - reach, centre[0] + reach, self.size);
        let ys = pixel_range(centre[1] - reach, centre[1] + reach, self.size);
        for y in ys {
            for x in xs.clone() {
                let (px, py) = (x as f32 + 0.5 - centre[0], y as f32 + 0.5 - centre[1]);
                let u = (px * cos + py * sin) / radius;
                let v = (-px * sin + py * cos) / radius;
                let head = u * u + (v / aspect) * (v / aspect) <= 1.0;
                if !head {
                    continue;
                }
                let mut colour = if v < -0.55 * aspect { hair } else { skin };
                let near = |p: [f32; 2], r: f32| {
                    let (du, dv) = (u - p[0], v - p[1]);
                    du * du + dv * dv <= r * r
                };
                if near([-eye_gap, eye_y], 0.11) || near([eye_gap, eye_y], 0.11) {
                    colour = eye_colour;
                }
                if near([0.0, 0.18], 0.07) {
                    colour = std::array::from_fn(|c| skin[c] * 0.6);
                }
                if (v - mouth_y).abs() <= 0.05 && u.abs() <= mouth_half {
                    colour = [0.55, 0.1, 0.12];
                }
                image.set_pixel(x, y, colour);
            }
        }
        add_noise(&mut rng, &mut image);
        Face {
            image,
            identity,
            landmarks,
        }
    }
}

impl Dataset for SyntheticFaces {
    fn len(&self) -> usize {
        self.len
    }

    fn class_names(&self) -> &[String] {
        &self.identity_names
    }

    fn get(&self, index: usize) -> Result<(Image, i64), DataError> {
        check_index(index, self.len)?;
        let face = self.face(index);
        Ok((face.image, face.identity as i64))
    }

    fn describe(&self) -> String {
        format!(
            "synthetic faces ({:?} split, {} images of {}px, {} identities, seed {})",
            self.stream, self.len, self.size, self.identities, self.seed
        )
    }
}

/// The faces as a landmark dataset (5 points in [`LANDMARK_NAMES`] order).
impl TaskDataset<LandmarkSample> for SyntheticFaces {
    fn len(&self) -> usize {
        self.len
    }

    fn class_names(&self) -> &[String] {
        &self.landmark_names
    }

    fn get(&self, index: usize) -> Result<LandmarkSample, DataError> {
        check_index(index, self.len)?;
        let face = self.face(index);
        Ok(LandmarkSample {
            image: face.image,
            points: face.landmarks.to_vec(),
        })
    }

    fn describe(&self) -> String {
        Dataset::describe(self)
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
