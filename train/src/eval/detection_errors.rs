//! Where a detector's false positives come from, in the manner of Hoiem, Chodpathumwan and Dai
//! ("Diagnosing Error in Object Detectors", ECCV 2012): each class's top-ranked false
//! positives — as many as the class has objects — are sorted into
//! - **localisation**: the right class on a box of IoU 0.1–0.5 with an object of that class,
//!   or a duplicate (IoU ≥ 0.5 with an object already detected);
//! - **confusion**: IoU ≥ 0.1 with an object of another class;
//! - **background**: IoU < 0.1 with every object.
//!
//! Matching is VOC's at IoU 0.5 ([`super::detection::voc_curve`]): detections in decreasing
//! score, each taking the unmatched object of its class it overlaps most; detections matched
//! to an ignored (`difficult`) object are neither true nor false. Hoiem et al. also split
//! confusion into similar and other classes; the built-in scenes have no class hierarchy, so
//! confusion is one type here.

use exemplar_inference::detection::iou;
use serde::{Deserialize, Serialize};

use super::detection::{ImageResult, best_match, ranked};

/// The IoU above which a detection matches an object (VOC's).
const MATCH_IOU: f32 = 0.5;
/// The IoU below which a box does not touch an object at all (Hoiem et al.'s).
const TOUCH_IOU: f32 = 0.1;

/// The false positives examined and their types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBreakdown {
    /// Top-ranked false positives examined: at most as many per class as it has objects.
    pub examined: usize,
    pub localisation: usize,
    pub confusion: usize,
    pub background: usize,
}

impl ErrorBreakdown {
    /// The share of the examined false positives of each type, in percent (localisation,
    /// confusion, background); zeros when none was examined.
    pub fn percentages(&self) -> [f64; 3] {
        let total = self.examined.max(1) as f64;
        [self.localisation, self.confusion, self.background].map(|n| 100.0 * n as f64 / total)
    }
}

/// The type of a false positive of `class` on `bbox` in `image`, given whether its best
/// same-class overlap was an object already taken.
fn error_type(image: &ImageResult, class: usize, bbox: [f32; 4], same_class: f32) -> ErrorType {
    if same_class >= TOUCH_IOU {
        return ErrorType::Localisation;
    }
    let other = image
        .truth
        .iter()
        .filter(|o| o.class != class)
        .map(|o| iou(bbox, o.bbox))
        .fold(0.0f32, f32::max);
    if other >= TOUCH_IOU {
        ErrorType::Confusion
    } else {
        ErrorType::Background
    }
}

enum ErrorType {
    Localisation,
    Confusion,
    Background,
}

/// The breakdown over `images` for `classes` classes.
pub fn breakdown(images: &[ImageResult], classes: usize) -> ErrorBreakdown {
    let mut total = ErrorBreakdown::default();
    for class in 0..classes {
        let objects = images
            .iter()
            .flat_map(|i| &i.truth)
            .filter(|o| o.class == class && !o.ignore)
            .count();
        let mut taken: Vec<Vec<bool>> = images.iter().map(|i| vec![false; i.truth.len()]).collect();
        let mut examined = 0;
        for (_, n, bbox) in ranked(images, class) {
            if examined == objects {
                break;
            }
            let same_class = match best_match(&images[n], class, bbox) {
                Some((j, overlap)) if overlap > MATCH_IOU => {
                    if images[n].truth[j].ignore {
                        continue;
                    }
                    if !taken[n][j] {
                        taken[n][j] = true;
                        continue;
                    }
                    overlap
                }
                Some((_, overlap)) => overlap,
                None => 0.0,
            };
            examined += 1;
            match error_type(&images[n], class, bbox, same_class) {
                ErrorType::Localisation => total.localisation += 1,
                ErrorType::Confusion => total.confusion += 1,
                ErrorType::Background => total.background += 1,
            }
        }
        total.examined += examined;
    }
    total
}

#[cfg(test)]
mod tests {
    use exemplar_inference::detection::Detection;

    use super::*;
    use exemplar_data::Object;

    fn object(class: usize, bbox: [f32; 4]) -> Object {
        Object {
            bbox,
            class,
            ignore: false,
        }
    }

    fn detection(class: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection { bbox, score, class }
    }

    #[test]
    fn each_false_positive_gets_its_type() {
        let truth = vec![
            object(0, [0.0, 0.0, 10.0, 10.0]),
            object(1, [20.0, 20.0, 30.0, 30.0]),
            object(0, [40.0, 0.0, 50.0, 10.0]),
            object(0, [0.0, 40.0, 10.0, 50.0]),
        ];
        let detections = vec![
            // A hit, then its duplicate: localisation.
            detection(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
            detection(0, 0.8, [0.5, 0.0, 10.0, 10.0]),
            // Class 0 on the class-1 object: confusion.
            detection(0, 0.7, [20.0, 20.0, 30.0, 30.0]),
            // Half off the object: IoU 1/3, localisation.
            detection(0, 0.6, [45.0, 0.0, 55.0, 10.0]),
            // Nowhere near anything: background, but the class has 3 objects and 3 false
            // positives were already examined, so it is not counted.
            detection(0, 0.5, [80.0, 80.0, 90.0, 90.0]),
            // Class 1's only false positive: background.
            detection(1, 0.4, [60.0, 60.0, 70.0, 70.0]),
        ];
        let images = [ImageResult { detections, truth }];
        let found = breakdown(&images, 2);
        assert_eq!(
            found,
            ErrorBreakdown {
                examined: 4,
                localisation: 2,
                confusion: 1,
                background: 1,
            }
        );
        assert_eq!(found.percentages(), [50.0, 25.0, 25.0]);
    }

    #[test]
    fn ignored_objects_and_perfect_detectors_give_no_errors() {
        let truth = vec![Object {
            ignore: true,
            ..object(0, [0.0, 0.0, 10.0, 10.0])
        }];
        let images = [ImageResult {
            detections: vec![detection(0, 0.9, [0.0, 0.0, 10.0, 10.0])],
            truth,
        }];
        assert_eq!(breakdown(&images, 1), ErrorBreakdown::default());
        assert_eq!(ErrorBreakdown::default().percentages(), [0.0; 3]);
    }
}
