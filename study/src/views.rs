//! How much each step of the augmentation ablation changes the views.
//!
//! Adding a step must change what the network sees, or the step's row in the ablation measures
//! nothing. [`Augmentation::apply`] gives every step its own random stream, so arm `k` and arm
//! `k − 1` make the same crop, jitter and flip draws on the same image with the same seed; the
//! difference between their views is the added step's own effect. It is reported as the mean
//! absolute per-pixel change (on the [0, 1] scale) over a fixed sample of images, and a step
//! whose change is below [`UNCHANGED_BELOW`] is flagged.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use exemplar_data::augment::AugmentPreset;
use exemplar_data::{DataError, Dataset};

/// A step whose mean per-pixel change is below this (0.2% of the pixel range) is flagged as
/// changing nothing.
pub const UNCHANGED_BELOW: f64 = 0.002;

/// Images measured per corpus.
pub const SAMPLE: usize = 256;

/// One ablation step's effect on one corpus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewChange {
    /// The corpus the views were drawn from (`synthetic`, `idx:…`).
    pub data: String,
    /// The arm's augmentation (`crop`, `color`, …); its step is what it adds to the previous arm.
    pub augment: String,
    /// Mean absolute per-pixel change against the previous arm's view, on the [0, 1] scale.
    pub mean_change: f64,
    /// Fraction of views the step changed by more than 10⁻⁴ per pixel on average (its
    /// probability, where it acts).
    pub views_changed: f64,
    pub image_size: usize,
    pub images: usize,
}

impl ViewChange {
    pub fn changes_nothing(&self) -> bool {
        self.mean_change < UNCHANGED_BELOW
    }
}

/// Measures every step of `ablation` after the first, on the first [`SAMPLE`] images of
/// `dataset` (or all of them), at `size` pixels.
pub fn measure(
    dataset: &Arc<dyn Dataset>,
    data: &str,
    ablation: &[AugmentPreset],
    size: usize,
) -> Result<Vec<ViewChange>, DataError> {
    let images = dataset.len().min(SAMPLE);
    let sample = (0..images)
        .map(|i| dataset.get(i).map(|(image, _)| image))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ablation
        .windows(2)
        .map(|pair| {
            let (before, after) = (pair[0].pipeline(), pair[1].pipeline());
            let (mut total, mut changed, mut pixels) = (0.0f64, 0usize, 0usize);
            for (i, image) in sample.iter().enumerate() {
                let seed = 0x71e3 + i as u64;
                let a = before.apply(image, size, &mut ChaCha8Rng::seed_from_u64(seed));
                let b = after.apply(image, size, &mut ChaCha8Rng::seed_from_u64(seed));
                let sum: f64 = a
                    .data
                    .iter()
                    .zip(&b.data)
                    .map(|(x, y)| f64::from((x - y).abs()))
                    .sum();
                total += sum;
                pixels += a.data.len();
                // Rounding (grayscale of a gray pixel) is not a change.
                changed += usize::from(sum > 1e-4 * a.data.len() as f64);
            }
            ViewChange {
                data: data.to_string(),
                augment: pair[1].name().to_string(),
                mean_change: total / pixels.max(1) as f64,
                views_changed: changed as f64 / images.max(1) as f64,
                image_size: size,
                images,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ABLATION;
    use exemplar_data::synthetic::{Stream, SyntheticObjects};

    /// The built-in scenes, made gray: what Fashion-MNIST looks like to the colour steps.
    struct Gray(Arc<dyn Dataset>);

    impl Dataset for Gray {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn class_names(&self) -> &[String] {
            self.0.class_names()
        }
        fn get(&self, index: usize) -> Result<(exemplar_data::Image, i64), DataError> {
            let (mut image, label) = self.0.get(index)?;
            for p in image.data.chunks_exact_mut(3) {
                let g = (p[0] + p[1] + p[2]) / 3.0;
                p.fill(g);
            }
            Ok((image, label))
        }
        fn describe(&self) -> String {
            "gray scenes".into()
        }
    }

    #[test]
    fn on_colour_scenes_every_step_changes_the_views() {
        let scenes: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 64, 32));
        let changes = measure(&scenes, "synthetic", &ABLATION, 32).unwrap();
        assert_eq!(changes.len(), ABLATION.len() - 1);
        for change in &changes {
            assert!(!change.changes_nothing(), "{change:?}");
        }
        // Grayscale acts on about a fifth of the views, blur on about half (their p).
        let by = |name: &str| changes.iter().find(|c| c.augment == name).unwrap();
        assert!(
            (0.05..0.4).contains(&by("grayscale").views_changed),
            "{changes:?}"
        );
        assert!(
            (0.3..0.7).contains(&by("aug-plus").views_changed),
            "{changes:?}"
        );
    }

    #[test]
    fn on_gray_images_the_grayscale_step_is_flagged() {
        let scenes: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 64, 32));
        let gray: Arc<dyn Dataset> = Arc::new(Gray(scenes));
        let changes = measure(&gray, "gray", &ABLATION, 32).unwrap();
        let grayscale = changes.iter().find(|c| c.augment == "grayscale").unwrap();
        assert!(grayscale.changes_nothing(), "{grayscale:?}");
        assert!(grayscale.mean_change < 1e-6, "{grayscale:?}");
        // Crop and jitter still act on gray images.
        assert!(changes.iter().filter(|c| !c.changes_nothing()).count() >= 2);
    }
}
