//! Semantic segmentation metrics from a confusion matrix: per-class IoU
//! (`TP / (TP + FP + FN)`), their mean over classes that occur in the ground truth or the
//! predictions (classes absent from both are left out, as in mmseg's `nanmean`), and pixel
//! accuracy. Pixels labelled 255 are not scored.

use serde::Serialize;

use exemplar_data::annotated::IGNORE_LABEL;

/// Counts of (true class, predicted class) pixels.
#[derive(Debug, Clone)]
pub struct Confusion {
    classes: usize,
    counts: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassIou {
    pub class: String,
    /// `None` when the class is in neither the ground truth nor the predictions.
    pub iou: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentationMetrics {
    pub miou: f64,
    pub pixel_accuracy: f64,
    pub per_class: Vec<ClassIou>,
    pub pixels: u64,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds one image: `truth` and `predicted` of equal length; ignored and out-of-range true
    /// labels are skipped.
    pub fn add(&mut self, truth: &[u8], predicted: &[u8]) {
        assert_eq!(truth.len(), predicted.len(), "mask sizes differ");
        for (&t, &p) in truth.iter().zip(predicted) {
            let (t, p) = (t as usize, p as usize);
            if t == IGNORE_LABEL as usize || t >= self.classes || p >= self.classes {
                continue;
            }
            self.counts[t * self.classes + p] += 1;
        }
    }

    pub fn metrics(&self, class_names: &[String]) -> SegmentationMetrics {
        let n = self.classes;
        let at = |t: usize, p: usize| self.counts[t * n + p] as f64;
        let total: f64 = self.counts.iter().map(|&c| c as f64).sum();
        let correct: f64 = (0..n).map(|c| at(c, c)).sum();
        let per_class: Vec<ClassIou> = (0..n)
            .map(|c| {
                let truth: f64 = (0..n).map(|p| at(c, p)).sum();
                let predicted: f64 = (0..n).map(|t| at(t, c)).sum();
                let union = truth + predicted - at(c, c);
                ClassIou {
                    class: class_names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    iou: (union > 0.0).then(|| at(c, c) / union),
                }
            })
            .collect();
        let present: Vec<f64> = per_class.iter().filter_map(|c| c.iou).collect();
        SegmentationMetrics {
            miou: if present.is_empty() {
                0.0
            } else {
                present.iter().sum::<f64>() / present.len() as f64
            },
            pixel_accuracy: if total > 0.0 { correct / total } else { 0.0 },
            per_class,
            pixels: total as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_iou() {
        // 3 classes; class 2 never occurs. Truth: 0 0 1 1 255; prediction: 0 1 1 1 2.
        let mut c = Confusion::new(3);
        c.add(&[0, 0, 1, 1, 255], &[0, 1, 1, 1, 2]);
        let m = c.metrics(&["bg".into(), "a".into(), "b".into()]);
        // Class 0: TP 1, FN 1 → 1/2. Class 1: TP 2, FP 1 → 2/3. Class 2: absent (the ignored
        // pixel's prediction is not counted).
        assert_eq!(m.per_class[0].iou, Some(0.5));
        assert_eq!(m.per_class[1].iou, Some(2.0 / 3.0));
        assert_eq!(m.per_class[2].iou, None);
        assert!((m.miou - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(m.pixel_accuracy, 0.75);
        assert_eq!(m.pixels, 4);
    }
}
