//! [`SyntheticFaces`]: face-like images whose label is an identity, with the 5 MAFL landmarks.

use rand::Rng;

use super::{
    Stream, add_noise, background, describe, hsv_to_rgb, pixel_range, random_colour, rng_for,
};
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
        // The identity's appearance comes from a stream that ignores the split and the index.
        let look = Look::of(&mut rng_for(self.seed, &[0, 1, identity as u64]));

        // Everything geometric is drawn per image, as a person's photographs vary: the landmarks
        // say nothing about who it is.
        let mut rng = rng_for(self.seed, &[self.stream as u64, 1, index as u64]);
        let size = self.size as f32;
        let mut image = background(&mut rng, self.size);
        let radius = rng.random_range(0.26..0.34) * size;
        let centre = [
            size / 2.0 + rng.random_range(-0.08..0.08) * size,
            size / 2.0 + rng.random_range(-0.06..0.06) * size,
        ];
        let angle: f32 = rng.random_range(-0.35..0.35);
        let aspect = rng.random_range(1.05..1.45);
        let eye_gap = rng.random_range(0.32..0.46);
        let eye_y = rng.random_range(-0.22..-0.1);
        let nose_y = rng.random_range(0.14..0.22);
        let mouth_y = rng.random_range(0.44..0.56);
        let mouth_half = rng.random_range(0.28..0.4);
        let (cos, sin) = (angle.cos(), angle.sin());
        // Face frame → image: x right, y down, unit = radius.
        let to_image = |u: f32, v: f32| {
            [
                centre[0] + radius * (u * cos - v * sin),
                centre[1] + radius * (u * sin + v * cos),
            ]
        };
        let landmarks = [
            to_image(-eye_gap, eye_y),
            to_image(eye_gap, eye_y),
            to_image(0.0, nose_y),
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
                if u * u + (v / aspect) * (v / aspect) > 1.0 {
                    continue;
                }
                let near = |p: [f32; 2], r: f32| {
                    let (du, dv) = (u - p[0], v - p[1]);
                    du * du + dv * dv <= r * r
                };
                let eyes = [[-eye_gap, eye_y], [eye_gap, eye_y]];
                let colour = if eyes.iter().any(|&e| near(e, 0.11)) {
                    look.eyes
                } else if let Some(frame) = look
                    .glasses
                    .filter(|_| eyes.iter().any(|&e| near(e, 0.2) && !near(e, 0.155)))
                {
                    frame
                } else if near([0.0, nose_y], 0.07) {
                    std::array::from_fn(|c| look.skin[c] * 0.6)
                } else if (v - mouth_y).abs() <= 0.05 && u.abs() <= mouth_half {
                    look.lips
                } else if v < -look.hairline * aspect || (look.beard && v > mouth_y + 0.12) {
                    look.hair
                } else {
                    look.skin_at(u, v)
                };
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

/// What tells one identity from another: colours, texture, accessories and marks, none of them
/// geometry the landmarks measure.
struct Look {
    skin: [f32; 3],
    hair: [f32; 3],
    eyes: [f32; 3],
    lips: [f32; 3],
    /// Where the hair starts, as a fraction of the head's height above its centre.
    hairline: f32,
    /// A frame colour, for an identity that wears glasses.
    glasses: Option<[f32; 3]>,
    beard: bool,
    /// Freckles: the share of the cheeks' small cells that are darker (0 for none).
    freckles: f32,
    /// A mark (mole) on one cheek, in the face's frame.
    mark: Option<[f32; 2]>,
}

impl Look {
    fn of(rng: &mut rand_chacha::ChaCha8Rng) -> Self {
        Self {
            skin: hsv_to_rgb(
                rng.random_range(0.02..0.11),
                rng.random_range(0.25..0.7),
                rng.random_range(0.35..0.95),
            ),
            hair: random_colour(rng),
            eyes: hsv_to_rgb(rng.random_range(0.0..1.0), 0.8, 0.35),
            lips: hsv_to_rgb(
                rng.random_range(0.95..1.02),
                rng.random_range(0.5..0.9),
                0.55,
            ),
            hairline: rng.random_range(0.45..0.65),
            glasses: rng.random_bool(0.3).then(|| random_colour(rng)),
            beard: rng.random_bool(0.25),
            freckles: if rng.random_bool(0.3) {
                rng.random_range(0.15..0.35)
            } else {
                0.0
            },
            mark: rng
                .random_bool(0.4)
                .then(|| [rng.random_range(-0.6..0.6), rng.random_range(0.05..0.35)]),
        }
    }

    /// The skin's colour at `(u, v)`: freckles on the cheeks, the mark where it is.
    fn skin_at(&self, u: f32, v: f32) -> [f32; 3] {
        let dark = |k: f32| std::array::from_fn(|c| self.skin[c] * k);
        if let Some([mu, mv]) = self.mark
            && (u - mu).powi(2) + (v - mv).powi(2) <= 0.06 * 0.06
        {
            return dark(0.45);
        }
        if self.freckles > 0.0 && u.abs() > 0.2 && (-0.05..0.4).contains(&v) {
            // A fixed pattern of cells in the face's frame: it moves with the face.
            let cell = ((u * 12.0).floor() as i32, (v * 12.0).floor() as i32);
            let hash = (cell.0.wrapping_mul(73_856_093) ^ cell.1.wrapping_mul(19_349_663)) as u32;
            if (hash % 1000) as f32 / 1000.0 < self.freckles {
                return dark(0.75);
            }
        }
        self.skin
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
        let identities = format!("{} identities", self.identities);
        describe(
            "faces",
            self.stream,
            self.len,
            self.size,
            &identities,
            self.seed,
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
    //! Identity is appearance alone: the landmarks cannot tell identities apart, colours can.

    use super::*;

    const IDENTITIES: usize = 10;

    /// Nearest class mean after scaling each feature by its spread; returns the share of `test`
    /// classified correctly.
    fn nearest_mean(train: &[(Vec<f32>, usize)], test: &[(Vec<f32>, usize)]) -> f64 {
        let dims = train[0].0.len();
        let spread: Vec<f32> = (0..dims)
            .map(|d| {
                let mean = train.iter().map(|(x, _)| x[d]).sum::<f32>() / train.len() as f32;
                let var = train
                    .iter()
                    .map(|(x, _)| (x[d] - mean).powi(2))
                    .sum::<f32>();
                (var / train.len() as f32).sqrt().max(1e-6)
            })
            .collect();
        let mut means = vec![vec![0.0f32; dims]; IDENTITIES];
        let mut counts = [0usize; IDENTITIES];
        for (x, class) in train {
            counts[*class] += 1;
            for d in 0..dims {
                means[*class][d] += x[d] / spread[d];
            }
        }
        for (mean, count) in means.iter_mut().zip(counts) {
            mean.iter_mut().for_each(|m| *m /= count as f32);
        }
        let nearest = |x: &[f32]| {
            let distance = |mean: &[f32]| -> f32 {
                (0..dims)
                    .map(|d| (x[d] / spread[d] - mean[d]).powi(2))
                    .sum()
            };
            (0..IDENTITIES)
                .min_by(|&a, &b| distance(&means[a]).total_cmp(&distance(&means[b])))
                .unwrap_or(0)
        };
        let right = test
            .iter()
            .filter(|(x, class)| nearest(x) == *class)
            .count();
        right as f64 / test.len() as f64
    }

    /// Wilson's 95% interval for a share `p` of `n` trials.
    fn wilson(p: f64, n: usize) -> [f64; 2] {
        let (n, z) = (n as f64, 1.96);
        let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
        [centre - half, centre + half]
    }

    /// The landmarks in the eyes' frame (origin between the eyes, x along them, unit the eye
    /// distance), so that position, size and rotation do not count, plus the raw coordinates.
    fn geometry(face: &Face) -> Vec<f32> {
        let [le, re] = [face.landmarks[0], face.landmarks[1]];
        let mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
        let axis = [re[0] - le[0], re[1] - le[1]];
        let len2 = axis[0] * axis[0] + axis[1] * axis[1];
        let mut out: Vec<f32> = face.landmarks.iter().flat_map(|p| [p[0], p[1]]).collect();
        for p in &face.landmarks[2..] {
            let d = [p[0] - mid[0], p[1] - mid[1]];
            out.push((d[0] * axis[0] + d[1] * axis[1]) / len2);
            out.push((-d[0] * axis[1] + d[1] * axis[0]) / len2);
        }
        out
    }

    /// Mean colours of 3×3 patches at the eyes and at the cheeks (halfway from an eye to the
    /// mouth corner below it).
    fn appearance(face: &Face) -> Vec<f32> {
        let [le, re, _, lm, rm] = face.landmarks;
        let half = |a: [f32; 2], b: [f32; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
        let image = &face.image;
        [le, re, half(le, lm), half(re, rm)]
            .iter()
            .flat_map(|p| {
                let (x, y) = (p[0] as usize, p[1] as usize);
                let mut sum = [0.0f32; 3];
                for (dx, dy) in (0..9).map(|k| (k % 3, k / 3)) {
                    let rgb = image.pixel(
                        (x + dx).saturating_sub(1).min(image.width - 1),
                        (y + dy).saturating_sub(1).min(image.height - 1),
                    );
                    (0..3).for_each(|c| sum[c] += rgb[c] / 9.0);
                }
                sum
            })
            .collect()
    }

    #[test]
    fn landmarks_carry_no_identity_and_appearance_does() {
        let train = SyntheticFaces::new(5, Stream::Train, 1000, 64, IDENTITIES);
        let test = SyntheticFaces::new(5, Stream::Val, 1000, 64, IDENTITIES);
        let features =
            |data: &SyntheticFaces, f: fn(&Face) -> Vec<f32>| -> Vec<(Vec<f32>, usize)> {
                (0..1000)
                    .map(|i| data.face(i))
                    .map(|face| (f(&face), face.identity))
                    .collect()
            };
        let chance = 1.0 / IDENTITIES as f64;
        let from_landmarks = nearest_mean(&features(&train, geometry), &features(&test, geometry));
        let [lo, hi] = wilson(from_landmarks, 1000);
        assert!(
            lo <= chance && chance <= hi,
            "identity from landmarks: {from_landmarks:.3} [{lo:.3}, {hi:.3}], chance {chance}"
        );
        let from_look = nearest_mean(&features(&train, appearance), &features(&test, appearance));
        let [lo, _] = wilson(from_look, 1000);
        assert!(
            lo > 0.8,
            "identity from appearance: {from_look:.3}, lower bound {lo:.3}"
        );
        println!("identity from landmarks {from_landmarks:.3}, from appearance {from_look:.3}");
    }
}
