//! Label-preserving augmentation for fine-tuning: a random resized crop (torchvision's sampling,
//! milder scales than contrastive pretraining), colour jitter, and a horizontal flip that
//! mirrors boxes, masks and landmarks with their image. Evaluation resizes the whole image.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use exemplar_data::annotated::Annotated;
use exemplar_data::augment::{ColorJitter, color_jitter, random_resized_crop_region};

/// Mild photometric noise: the tasks' labels do not depend on colour, but it is no pretext.
const JITTER: ColorJitter = ColorJitter {
    brightness: 0.2,
    contrast: 0.2,
    saturation: 0.2,
    hue: 0.02,
    p: 0.5,
};

#[derive(Debug, Clone)]
pub struct TaskAugmentation {
    /// Area range of the random crop; `None` resizes the whole image.
    pub crop_scale: Option<[f32; 2]>,
    pub flip: bool,
    /// Points that swap names under a flip (landmarks).
    pub flip_pairs: Vec<[usize; 2]>,
    pub color: bool,
}

impl TaskAugmentation {
    /// For scenes (detection, segmentation): crops of 30–100% of the image, flips, colour
    /// jitter.
    pub fn scenes() -> Self {
        Self {
            crop_scale: Some([0.3, 1.0]),
            flip: true,
            flip_pairs: Vec::new(),
            color: true,
        }
    }

    /// One random training view of `sample`, `size × size` pixels.
    pub fn apply<S: Annotated>(&self, sample: S, size: usize, rng: &mut ChaCha8Rng) -> S {
        let mut out = match self.crop_scale {
            Some(scale) => {
                let region = random_resized_crop_region(sample.image(), scale, rng);
                sample.crop_resize(region, size, size)
            }
            None => sample.resize(size, size),
        };
        if self.color && rng.random::<f32>() < JITTER.p {
            color_jitter(out.image_mut(), &JITTER, rng);
        }
        if self.flip && rng.random_bool(0.5) {
            out = out.flip(&self.flip_pairs);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exemplar_data::Image;
    use exemplar_data::annotated::{DetectionSample, LandmarkSample, Object, SegmentationSample};
    use exemplar_data::synthetic::rng_for;

    /// Geometry only: what a crop or flip does to the labels must match what it does to pixels.
    fn geometric(flip_pairs: Vec<[usize; 2]>) -> TaskAugmentation {
        TaskAugmentation {
            crop_scale: Some([0.3, 1.0]),
            flip: true,
            flip_pairs,
            color: false,
        }
    }

    /// An image whose red channel is `label / 10` per pixel.
    fn painted(mask: &[u8], w: usize, h: usize) -> Image {
        let mut image = Image::new(w, h);
        for (i, &m) in mask.iter().enumerate() {
            image.data[i * 3] = m as f32 / 10.0;
        }
        image
    }

    #[test]
    fn masks_move_with_their_pixels() {
        let (w, h) = (40, 30);
        let mask: Vec<u8> = (0..w * h)
            .map(|i| ((i % w) / 10 + 3 * ((i / w) / 10)) as u8)
            .collect();
        let aug = geometric(Vec::new());
        for seed in 0..20 {
            let sample = SegmentationSample {
                image: painted(&mask, w, h),
                mask: mask.clone(),
            };
            let out = aug.apply(sample, 16, &mut rng_for(seed, &[]));
            let mut agree = 0;
            for (i, &label) in out.mask.iter().enumerate() {
                if (out.image.data[i * 3] - label as f32 / 10.0).abs() < 1e-4 {
                    agree += 1;
                }
            }
            // Bilinear pixels blend at region borders; labels are nearest: most must agree.
            assert!(
                agree * 10 >= out.mask.len() * 7,
                "seed {seed}: {agree} of {}",
                out.mask.len()
            );
        }
    }

    #[test]
    fn boxes_and_landmarks_move_with_their_pixels() {
        let (w, h) = (48, 40);
        let mut image = Image::new(w, h);
        let bbox = [10.0f32, 8.0, 30.0, 24.0];
        for y in 8..24 {
            for x in 10..30 {
                image.set_pixel(x, y, [1.0, 1.0, 1.0]);
            }
        }
        // Landmarks: a red dot (left) and a green dot (right), swapped in name by a flip.
        image.set_pixel(14, 30, [1.0, 0.0, 0.0]);
        image.set_pixel(34, 30, [0.0, 1.0, 0.0]);
        let aug = geometric(vec![[0, 1]]);
        for seed in 0..20 {
            let det = DetectionSample {
                image: image.clone(),
                objects: vec![Object {
                    bbox,
                    class: 0,
                    ignore: false,
                }],
            };
            let out = aug.apply(det, 24, &mut rng_for(seed, &[1]));
            if let Some(o) = out.objects.first() {
                let (cx, cy) = ((o.bbox[0] + o.bbox[2]) / 2.0, (o.bbox[1] + o.bbox[3]) / 2.0);
                let centre = out.image.pixel(cx as usize, cy as usize);
                assert!(
                    centre[2] > 0.9,
                    "seed {seed}: box centre is not on the object"
                );
            }

            let lm = LandmarkSample {
                image: image.clone(),
                points: vec![[14.5, 30.5], [34.5, 30.5]],
            };
            let out = TaskAugmentation {
                crop_scale: None,
                ..aug.clone()
            }
            .apply(lm, 48, &mut rng_for(seed, &[2]));
            let flipped = out.points[0][0] > out.points[1][0];
            assert!(
                !flipped,
                "the subject's left point must stay first after a flip"
            );
            // Point 0 sits on the left dot, whichever colour it now has.
            let p = out
                .image
                .pixel(out.points[0][0] as usize, out.points[0][1] as usize);
            assert!(
                p[0] + p[1] > 0.9,
                "seed {seed}: point 0 lost its dot: {p:?}"
            );
        }
    }
}
