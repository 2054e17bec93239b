//! [`SyntheticObjects`]: scenes of one main shape and up to two distractors, with boxes and masks.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::shapes::shape_contains;
use super::{Stream, add_noise, background, describe, pixel_range, random_colour, rng_for};
use crate::annotated::{DetectionSample, Object, SegmentationSample, TaskDataset};
use crate::{DataError, Dataset, Image, check_index};

/// The shape classes of [`SyntheticObjects`], in label order.
pub const OBJECT_CLASSES: [&str; 10] = [
    "circle",
    "square",
    "triangle",
    "diamond",
    "cross",
    "ring",
    "star",
    "crescent",
    "ellipse",
    "half-disc",
];

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
        let classes = format!("{} classes", OBJECT_CLASSES.len());
        describe(
            "objects",
            self.stream,
            self.len,
            self.size,
            &classes,
            self.seed,
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
