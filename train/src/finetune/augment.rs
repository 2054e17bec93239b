//! Label-preserving augmentation for fine-tuning: a random resized crop (torchvision's sampling,
//! milder scales than contrastive pretraining), colour jitter, and a horizontal flip that
//! mirrors boxes, masks and landmarks with their image. Evaluation resizes the whole image.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::augment::{ColorJitter, color_jitter, random_resized_crop_region};
use crate::data::annotated::Annotated;

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
