//! Detection metrics: PASCAL VOC07 average precision at IoU 0.5 (the devkit's 11-point version
//! and the area under the interpolated curve, as `voc_eval.py` computes them) and COCO's
//! AP@[.5:.95], AP50 and AP75 (`cocoeval.py`: 101 recall points, at most 100 detections per
//! image and class, crowd regions matched by intersection over the detection's area).
//!
//! Boxes are continuous pixel edges (VOC's annotations are converted on reading), so the IoU has
//! no "+1": on real VOC data the numbers differ from the devkit's in the third decimal.

use exemplar_inference::detection::{Detection, area, iou};
use serde::Serialize;

use super::detection_errors::{ErrorBreakdown, breakdown};
use exemplar_data::Object;

/// One evaluated image: what the model found and the ground truth.
#[derive(Debug, Clone)]
pub struct ImageResult {
    pub detections: Vec<Detection>,
    pub truth: Vec<Object>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassAp {
    pub class: String,
    /// `None` when the class has no (scored) ground truth.
    pub ap50_voc11: Option<f64>,
    pub ap50_area: Option<f64>,
    pub coco_ap: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionMetrics {
    /// VOC07 mAP@0.5, 11-point interpolation.
    pub voc07_map50_11point: f64,
    /// VOC mAP@0.5, area under the interpolated precision/recall curve.
    pub voc_map50_area: f64,
    /// COCO AP averaged over IoU 0.50:0.05:0.95.
    pub coco_ap: f64,
    pub coco_ap50: f64,
    pub coco_ap75: f64,
    pub per_class: Vec<ClassAp>,
    pub images: usize,
    pub detections: usize,
    pub objects: usize,
    /// The types of the top-ranked false positives ([`super::detection_errors`]).
    pub errors: ErrorBreakdown,
}

/// Every metric over `images`; `class_names` fixes the classes.
pub fn evaluate(images: &[ImageResult], class_names: &[String]) -> DetectionMetrics {
    let classes = class_names.len();
    let mut per_class = Vec::with_capacity(classes);
    let thresholds: Vec<f32> = (0..10).map(|i| 0.5 + 0.05 * i as f32).collect();
    let mut coco_by_threshold = vec![Vec::new(); thresholds.len()];
    for (class, name) in class_names.iter().enumerate() {
        let (voc11, voc_area) = match voc_curve(images, class, 0.5) {
            Some((recall, precision)) => (
                Some(voc_ap_11point(&recall, &precision)),
                Some(voc_ap_area(&recall, &precision)),
            ),
            None => (None, None),
        };
        let coco: Vec<Option<f64>> = thresholds
            .iter()
            .map(|&t| coco_ap_at(images, class, t))
            .collect();
        for (t, ap) in coco.iter().enumerate() {
            if let Some(ap) = ap {
                coco_by_threshold[t].push(*ap);
            }
        }
        let valid: Vec<f64> = coco.iter().flatten().copied().collect();
        per_class.push(ClassAp {
            class: name.clone(),
            ap50_voc11: voc11,
            ap50_area: voc_area,
            coco_ap: (!valid.is_empty()).then(|| mean(&valid)),
        });
    }
    let mean_of = |f: fn(&ClassAp) -> Option<f64>| {
        let values: Vec<f64> = per_class.iter().filter_map(f).collect();
        mean(&values)
    };
    let all: Vec<f64> = coco_by_threshold.iter().flatten().copied().collect();
    DetectionMetrics {
        voc07_map50_11point: mean_of(|c| c.ap50_voc11),
        voc_map50_area: mean_of(|c| c.ap50_area),
        coco_ap: mean(&all),
        coco_ap50: mean(&coco_by_threshold[0]),
        coco_ap75: mean(&coco_by_threshold[5]),
        per_class,
        images: images.len(),
        detections: images.iter().map(|i| i.detections.len()).sum(),
        objects: images.iter().map(|i| i.truth.len()).sum(),
        errors: breakdown(images, classes),
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The detections of `class` over `images` as `(score, image index, box)`, highest first.
pub(super) fn ranked(images: &[ImageResult], class: usize) -> Vec<(f32, usize, [f32; 4])> {
    let mut ranked: Vec<(f32, usize, [f32; 4])> = images
        .iter()
        .enumerate()
        .flat_map(|(n, i)| {
            i.detections
                .iter()
                .filter(|d| d.class == class)
                .map(move |d| (d.score, n, d.bbox))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
}

/// The object of `class` in `image` that `bbox` overlaps most: its index and the IoU.
pub(super) fn best_match(
    image: &ImageResult,
    class: usize,
    bbox: [f32; 4],
) -> Option<(usize, f32)> {
    image
        .truth
        .iter()
        .enumerate()
        .filter(|(_, o)| o.class == class)
        .map(|(j, o)| (j, iou(bbox, o.bbox)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// `voc_eval.py`'s matching for one class: detections in decreasing score, each matched to the
/// ground-truth box of highest IoU in its image; above the threshold it is a true positive if
/// that box is unmatched, a false positive if already taken, and neither if it is `difficult`.
/// Returns the cumulative recall and precision, or `None` without scored ground truth.
pub fn voc_curve(
    images: &[ImageResult],
    class: usize,
    threshold: f32,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let positives = images
        .iter()
        .flat_map(|i| &i.truth)
        .filter(|o| o.class == class && !o.ignore)
        .count();
    if positives == 0 {
        return None;
    }
    let dets = ranked(images, class);
    let mut taken: Vec<Vec<bool>> = images.iter().map(|i| vec![false; i.truth.len()]).collect();
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut recall, mut precision) = (Vec::new(), Vec::new());
    for (_, n, bbox) in dets {
        match best_match(&images[n], class, bbox) {
            Some((j, overlap)) if overlap > threshold => {
                if images[n].truth[j].ignore {
                    continue;
                }
                if taken[n][j] {
                    fp += 1;
                } else {
                    taken[n][j] = true;
                    tp += 1;
                }
            }
            _ => fp += 1,
        }
        recall.push(tp as f64 / positives as f64);
        precision.push(tp as f64 / (tp + fp) as f64);
    }
    Some((recall, precision))
}

/// VOC2007's 11-point interpolated AP.
pub fn voc_ap_11point(recall: &[f64], precision: &[f64]) -> f64 {
    (0..=10)
        .map(|i| {
            let t = i as f64 / 10.0;
            recall
                .iter()
                .zip(precision)
                .filter(|(r, _)| **r >= t)
                .map(|(_, p)| *p)
                .fold(0.0, f64::max)
        })
        .sum::<f64>()
        / 11.0
}

/// Area under the monotone (right-to-left maximum) precision envelope (VOC2010+).
pub fn voc_ap_area(recall: &[f64], precision: &[f64]) -> f64 {
    let mut mrec = vec![0.0];
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = vec![0.0];
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    (0..mrec.len() - 1)
        .filter(|&i| mrec[i + 1] != mrec[i])
        .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
        .sum()
}

/// Detections per image and class that COCO scores.
const COCO_MAX_DETECTIONS: usize = 100;

/// COCO AP of one class at one IoU threshold (`None` without non-crowd ground truth).
pub fn coco_ap_at(images: &[ImageResult], class: usize, threshold: f32) -> Option<f64> {
    let mut scored: Vec<(f32, bool)> = Vec::new();
    let mut positives = 0usize;
    for image in images {
        let mut truth: Vec<&Object> = image.truth.iter().filter(|o| o.class == class).collect();
        // Crowd regions last, so a detection prefers a real object.
        truth.sort_by_key(|o| o.ignore);
        positives += truth.iter().filter(|o| !o.ignore).count();
        let mut dets: Vec<&Detection> = image
            .detections
            .iter()
            .filter(|d| d.class == class)
            .collect();
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        dets.truncate(COCO_MAX_DETECTIONS);
        let mut matched = vec![false; truth.len()];
        for det in dets {
            let mut best: Option<usize> = None;
            let mut best_iou = threshold.min(1.0 - 1e-10);
            for (g, object) in truth.iter().enumerate() {
                if matched[g] && !object.ignore {
                    continue;
                }
                // Once matched to a real object, stop before the crowd regions.
                if best.is_some_and(|b| !truth[b].ignore) && object.ignore {
                    break;
                }
                let overlap = if object.ignore {
                    crowd_overlap(det.bbox, object.bbox)
                } else {
                    iou(det.bbox, object.bbox)
                };
                if overlap < best_iou {
                    continue;
                }
                best_iou = overlap;
                best = Some(g);
            }
            match best {
                Some(g) if truth[g].ignore => {} // matched a crowd: not scored
                Some(g) => {
                    matched[g] = true;
                    scored.push((det.score, true));
                }
                None => scored.push((det.score, false)),
            }
        }
    }
    if positives == 0 {
        return None;
    }
    // A stable sort, as cocoeval's mergesort, so ties keep image order.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut recall = Vec::with_capacity(scored.len());
    let mut precision = Vec::with_capacity(scored.len());
    for (_, hit) in &scored {
        if *hit {
            tp += 1;
        } else {
            fp += 1;
        }
        recall.push(tp as f64 / positives as f64);
        precision.push(tp as f64 / (tp + fp) as f64);
    }
    for i in (0..precision.len().saturating_sub(1)).rev() {
        precision[i] = precision[i].max(precision[i + 1]);
    }
    let total: f64 = (0..=100)
        .map(|r| {
            let target = r as f64 / 100.0;
            let index = recall.partition_point(|&x| x < target);
            precision.get(index).copied().unwrap_or(0.0)
        })
        .sum();
    Some(total / 101.0)
}

/// COCO's overlap with a crowd region: intersection over the detection's own area.
fn crowd_overlap(det: [f32; 4], crowd: [f32; 4]) -> f32 {
    let w = (det[2].min(crowd[2]) - det[0].max(crowd[0])).max(0.0);
    let h = (det[3].min(crowd[3]) - det[1].max(crowd[1])).max(0.0);
    let a = area(det);
    if a <= 0.0 { 0.0 } else { w * h / a }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(x: f32, class: usize, ignore: bool) -> Object {
        Object {
            bbox: [x, 0.0, x + 10.0, 10.0],
            class,
            ignore,
        }
    }

    fn det(x: f32, score: f32, class: usize) -> Detection {
        Detection {
            bbox: [x, 0.0, x + 10.0, 10.0],
            score,
            class,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_perfect_detector_scores_one_everywhere() {
        let images = vec![ImageResult {
            detections: vec![det(0.0, 0.9, 0), det(50.0, 0.8, 1)],
            truth: vec![obj(0.0, 0, false), obj(50.0, 1, false)],
        }];
        let m = evaluate(&images, &["a".into(), "b".into()]);
        assert!(close(m.voc07_map50_11point, 1.0));
        assert!(close(m.voc_map50_area, 1.0));
        assert!(close(m.coco_ap, 1.0));
    }

    /// Two objects; detections at scores 0.9 (hit), 0.8 (miss), 0.7 (hit).
    /// Recall 1/2, 1/2, 1; precision 1, 1/2, 2/3.
    fn hit_miss_hit() -> Vec<ImageResult> {
        vec![
            ImageResult {
                detections: vec![det(0.0, 0.9, 0), det(100.0, 0.8, 0)],
                truth: vec![obj(0.0, 0, false)],
            },
            ImageResult {
                detections: vec![det(0.0, 0.7, 0)],
                truth: vec![obj(0.0, 0, false)],
            },
        ]
    }

    #[test]
    fn hand_worked_voc_ap() {
        let (recall, precision) = voc_curve(&hit_miss_hit(), 0, 0.5).unwrap();
        assert_eq!(recall, vec![0.5, 0.5, 1.0]);
        // 11-point: recall ≥ 0.0 … 0.5 (6 points) → 1; 0.6 … 1.0 (5 points) → 2/3.
        assert!(close(
            voc_ap_11point(&recall, &precision),
            (6.0 + 5.0 * 2.0 / 3.0) / 11.0
        ));
        // Area: 0.5 × 1 + 0.5 × 2/3.
        assert!(close(
            voc_ap_area(&recall, &precision),
            0.5 + 0.5 * 2.0 / 3.0
        ));
    }

    #[test]
    fn hand_worked_coco_ap() {
        // 101 recall points: 0.00 … 0.50 (51) at precision 1, 0.51 … 1.00 (50) at 2/3.
        let ap = coco_ap_at(&hit_miss_hit(), 0, 0.5).unwrap();
        assert!(close(ap, (51.0 + 50.0 * 2.0 / 3.0) / 101.0), "{ap}");
        // A box shifted by 2 px has IoU 8/12 = 0.667: a hit up to threshold 0.65, a miss above.
        let images = vec![ImageResult {
            detections: vec![det(2.0, 0.9, 0)],
            truth: vec![obj(0.0, 0, false)],
        }];
        assert!(close(coco_ap_at(&images, 0, 0.65).unwrap(), 1.0));
        assert!(close(coco_ap_at(&images, 0, 0.7).unwrap(), 0.0));
        let m = evaluate(&images, &["a".into()]);
        // Hits at 0.50 … 0.65 (4 of 10 thresholds).
        assert!(close(m.coco_ap, 0.4), "{}", m.coco_ap);
        assert!(close(m.coco_ap50, 1.0) && close(m.coco_ap75, 0.0));
    }

    #[test]
    fn difficult_and_crowd_objects_neither_count_nor_penalise() {
        let images = vec![ImageResult {
            detections: vec![det(0.0, 0.9, 0), det(50.0, 0.8, 0)],
            truth: vec![obj(0.0, 0, false), obj(50.0, 0, true)],
        }];
        let (recall, precision) = voc_curve(&images, 0, 0.5).unwrap();
        assert_eq!((recall, precision), (vec![1.0], vec![1.0]));
        assert!(close(coco_ap_at(&images, 0, 0.5).unwrap(), 1.0));
        // A duplicate detection of a matched object is a false positive.
        let images = vec![ImageResult {
            detections: vec![det(0.0, 0.9, 0), det(0.0, 0.8, 0)],
            truth: vec![obj(0.0, 0, false)],
        }];
        let (_, precision) = voc_curve(&images, 0, 0.5).unwrap();
        assert_eq!(precision, vec![1.0, 0.5]);
    }

    #[test]
    fn classes_without_ground_truth_are_left_out_of_the_mean() {
        let images = vec![ImageResult {
            detections: vec![det(0.0, 0.9, 0), det(0.0, 0.9, 1)],
            truth: vec![obj(0.0, 0, false)],
        }];
        let m = evaluate(&images, &["a".into(), "b".into()]);
        assert_eq!(m.per_class[1].ap50_voc11, None);
        assert!(close(m.voc07_map50_11point, 1.0));
    }
}
