//! [`SyntheticFaces`]: face-like images whose label is an identity, with the 5 MAFL landmarks.

use rand::Rng;

use super::{Stream, add_noise, background, hsv_to_rgb, pixel_range, random_colour, rng_for};
use crate::annotated::{LandmarkSample, TaskDataset};
use crate::{DataError, Dataset, Image, check_index};

/// Names of the five landmarks of [`SyntheticFaces`], in the MAFL order.
pub const LANDMARK_NAMES: [&str; 5] =
    ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"];

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
