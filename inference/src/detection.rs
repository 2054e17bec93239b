//! CenterNet-style detection ("Objects as Points", Zhou et al. 2019), outside the network.
//!
//! The network ends in one dense map per image, `[classes + 4, h, w]` at stride `s`:
//! - channels `0..classes`: heatmap logits; an object's centre is a local maximum of its class
//!   channel after the sigmoid;
//! - channel `classes + 0`, `+ 1`: the centre's offset inside its cell, `x` and `y`, in cells;
//! - channel `classes + 2`, `+ 3`: `ln(width / s)` and `ln(height / s)`.
//!
//! [`encode`] builds the training targets for that layout and [`decode`] turns outputs back into
//! boxes, so the two cannot drift apart. Peak picking, thresholds and NMS happen here rather than
//! in the graph because ONNX export (burn-onnx) lowers only the plain layers.

use serde::{Deserialize, Serialize};

use crate::card::TaskSpec;
use crate::served::{Output, ServedModel, ServedTask};

/// Output channels besides the class heatmaps: x/y offset and log width/height.
pub const BOX_CHANNELS: usize = 4;

/// How raw maps become detections; stored in the model card.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionDecoding {
    /// Input pixels per output cell.
    pub stride: usize,
    /// Peaks scoring below this are dropped.
    pub score_threshold: f32,
    /// Same-class boxes overlapping a higher-scoring one by more than this IoU are dropped.
    pub nms_iou: f32,
    /// At most this many detections per image.
    pub max_detections: usize,
}

impl DetectionDecoding {
    pub fn validate(&self, width: usize, height: usize) -> Result<(), String> {
        if self.stride == 0
            || !width.is_multiple_of(self.stride)
            || !height.is_multiple_of(self.stride)
        {
            return Err(format!(
                "detection stride {} must divide the input size {width}×{height}",
                self.stride
            ));
        }
        if !(0.0..=1.0).contains(&self.score_threshold) || !(0.0..=1.0).contains(&self.nms_iou) {
            return Err("score_threshold and nms_iou must lie in [0, 1]".into());
        }
        if self.max_detections == 0 {
            return Err("max_detections must be positive".into());
        }
        Ok(())
    }
}

/// One detected object, in the pixels of the image that was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `[x0, y0, x1, y1]`, corners in pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    pub class: usize,
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes (0 when either is empty).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Area of a `[x0, y0, x1, y1]` box (0 when inverted).
pub fn area(b: [f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Greedy per-class non-maximum suppression; the result is sorted by descending score.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len());
    for det in detections {
        let suppressed = kept
            .iter()
            .any(|k| k.class == det.class && iou(k.bbox, det.bbox) > iou_threshold);
        if !suppressed {
            kept.push(det);
        }
    }
    kept
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes one image's map (`[classes + 4, h, w]`, row-major) into detections.
///
/// `scale` converts input pixels to the submitted image's pixels (`original / input` per axis)
/// and boxes are clipped to `bounds` (the submitted image's width and height).
pub fn decode(
    map: &[f32],
    classes: usize,
    [h, w]: [usize; 2],
    decoding: &DetectionDecoding,
    scale: [f32; 2],
    bounds: [f32; 2],
) -> Vec<Detection> {
    assert_eq!(
        map.len(),
        (classes + BOX_CHANNELS) * h * w,
        "map does not match its declared shape"
    );
    let plane = h * w;
    let at = |channel: usize, y: usize, x: usize| map[channel * plane + y * w + x];
    let stride = decoding.stride as f32;
    let mut candidates = Vec::new();
    for class in 0..classes {
        for y in 0..h {
            for x in 0..w {
                let logit = at(class, y, x);
                let score = sigmoid(logit);
                if score < decoding.score_threshold || !is_peak(&at, class, y, x, [h, w]) {
                    continue;
                }
                let cx = (x as f32 + at(classes, y, x)) * stride;
                let cy = (y as f32 + at(classes + 1, y, x)) * stride;
                // Clamped so a wild output cannot overflow to infinity.
                let bw = at(classes + 2, y, x).clamp(-10.0, 10.0).exp() * stride;
                let bh = at(classes + 3, y, x).clamp(-10.0, 10.0).exp() * stride;
                let bbox = [
                    ((cx - bw / 2.0) * scale[0]).clamp(0.0, bounds[0]),
                    ((cy - bh / 2.0) * scale[1]).clamp(0.0, bounds[1]),
                    ((cx + bw / 2.0) * scale[0]).clamp(0.0, bounds[0]),
                    ((cy + bh / 2.0) * scale[1]).clamp(0.0, bounds[1]),
                ];
                if area(bbox) > 0.0 {
                    candidates.push(Detection { bbox, score, class });
                }
            }
        }
    }
    let mut kept = nms(candidates, decoding.nms_iou);
    kept.truncate(decoding.max_detections);
    kept
}

/// True when `(y, x)` is a maximum of its 3×3 neighbourhood in `channel` (CenterNet's max-pool
/// test; ties count as peaks).
fn is_peak(
    at: &impl Fn(usize, usize, usize) -> f32,
    channel: usize,
    y: usize,
    x: usize,
    [h, w]: [usize; 2],
) -> bool {
    let value = at(channel, y, x);
    for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
        for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
            if at(channel, ny, nx) > value {
                return false;
            }
        }
    }
    true
}

/// Training targets for one image, laid out like the network output.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterTargets {
    /// `[classes, h, w]`: 1 at object centres, a Gaussian around them, 0 elsewhere.
    pub heatmap: Vec<f32>,
    /// `[4, h, w]`: offset x, offset y, ln(w / s), ln(h / s) at centre cells.
    pub boxes: Vec<f32>,
    /// `[h, w]`: 1 where `boxes` holds a target.
    pub mask: Vec<f32>,
    /// Objects encoded.
    pub objects: usize,
}

/// Encodes `boxes` (input pixels, `[x0, y0, x1, y1]`) of `classes` into targets for a map of
/// `[h, w]` cells at `stride`.
///
/// Each object is a Gaussian bump on its class channel with standard deviations of a sixth of
/// its size per axis (TTFNet's elliptical variant of CenterNet's), peaking at exactly 1 in its
/// centre cell. When two objects share a centre cell the smaller one keeps the box target.
pub fn encode(
    boxes: &[[f32; 4]],
    labels: &[usize],
    classes: usize,
    [h, w]: [usize; 2],
    stride: usize,
) -> CenterTargets {
    let plane = h * w;
    let mut targets = CenterTargets {
        heatmap: vec![0.0; classes * plane],
        boxes: vec![0.0; BOX_CHANNELS * plane],
        mask: vec![0.0; plane],
        objects: 0,
    };
    let s = stride as f32;
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| area(boxes[b]).total_cmp(&area(boxes[a])));
    for i in order {
        let [x0, y0, x1, y1] = boxes[i];
        let (bw, bh) = ((x1 - x0) / s, (y1 - y0) / s);
        if bw <= 0.0 || bh <= 0.0 || labels[i] >= classes {
            continue;
        }
        let (cx, cy) = ((x0 + x1) / 2.0 / s, (y0 + y1) / 2.0 / s);
        let gx = (cx.floor().max(0.0) as usize).min(w - 1);
        let gy = (cy.floor().max(0.0) as usize).min(h - 1);
        let (sx, sy) = ((bw / 6.0).max(0.5), (bh / 6.0).max(0.5));
        let heat = &mut targets.heatmap[labels[i] * plane..(labels[i] + 1) * plane];
        for y in 0..h {
            let dy = y as f32 - gy as f32;
            for x in 0..w {
                let dx = x as f32 - gx as f32;
                let v = (-(dx * dx) / (2.0 * sx * sx) - (dy * dy) / (2.0 * sy * sy)).exp();
                let cell = &mut heat[y * w + x];
                *cell = cell.max(v);
            }
        }
        let cell = gy * w + gx;
        targets.boxes[cell] = cx - gx as f32;
        targets.boxes[plane + cell] = cy - gy as f32;
        targets.boxes[2 * plane + cell] = bw.ln();
        targets.boxes[3 * plane + cell] = bh.ln();
        targets.mask[cell] = 1.0;
        targets.objects += 1;
    }
    targets
}

/// `/v1/detect`'s option.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetectQuery {
    /// drop detections scoring below this (default: the model card's threshold)
    #[param(minimum = 0, maximum = 1)]
    pub score_threshold: Option<f32>,
}

/// Why `/v1/detect` refused its options.
#[derive(Debug, thiserror::Error)]
pub enum DetectOptionError {
    #[error("score_threshold must be between 0 and 1, not {0}")]
    ScoreThreshold(f32),
    #[error("model '{0}' is not a detection model")]
    NotDetection(String),
}

/// One detected object as served: COCO-style `[x, y, width, height]`, with its class name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Detection)]
pub struct DetectedObject {
    /// `[x, y, width, height]` in the submitted image's pixels (COCO style).
    pub bbox: [f32; 4],
    pub score: f32,
    pub class_id: usize,
    pub class_name: String,
}

/// `POST /v1/detect`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetectAnswer {
    pub model: String,
    /// The submitted image's size, which the boxes refer to.
    pub width: usize,
    pub height: usize,
    pub detections: Vec<DetectedObject>,
}

/// Detection, served: the card's decoding, with the query's score threshold if given.
pub struct Detect;

impl ServedTask for Detect {
    const TASK: &'static str = "detection";
    const PATH: &'static str = "/v1/detect";
    const SUMMARY: &'static str =
        "Detection: COCO-style boxes [x, y, w, h] with scores and class names";
    type Query = DetectQuery;
    type Options = DetectionDecoding;
    type Error = DetectOptionError;
    type Answer = DetectAnswer;

    fn options(model: &ServedModel, query: DetectQuery) -> Result<DetectionDecoding, Self::Error> {
        let TaskSpec::Detection(decoding) = &model.card.task else {
            return Err(DetectOptionError::NotDetection(model.name.to_string()));
        };
        let mut decoding = *decoding;
        if let Some(threshold) = query.score_threshold {
            if !(0.0..=1.0).contains(&threshold) {
                return Err(DetectOptionError::ScoreThreshold(threshold));
            }
            decoding.score_threshold = threshold;
        }
        Ok(decoding)
    }

    fn answer(
        model: &ServedModel,
        decoding: DetectionDecoding,
        [width, height]: [usize; 2],
        output: Output,
    ) -> DetectAnswer {
        let names = &model.card.class_names;
        let [w, h] = [width as f32, height as f32];
        let [input_w, input_h] = model.input_size.map(|n| n as f32);
        let detections = decode(
            &output.values,
            names.len(),
            [output.shape[1], output.shape[2]],
            &decoding,
            [w / input_w, h / input_h],
            [w, h],
        );
        let detections = detections
            .iter()
            .map(|d| {
                let [x0, y0, x1, y1] = d.bbox;
                DetectedObject {
                    bbox: [x0, y0, x1 - x0, y1 - y0],
                    score: d.score,
                    class_id: d.class,
                    class_name: names[d.class].clone(),
                }
            })
            .collect();
        DetectAnswer {
            model: model.name.to_string(),
            width,
            height,
            detections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECODING: DetectionDecoding = DetectionDecoding {
        stride: 4,
        score_threshold: 0.3,
        nms_iou: 0.5,
        max_detections: 10,
    };

    /// Turns targets into the logits a perfect network would output.
    fn perfect_output(t: &CenterTargets, classes: usize) -> Vec<f32> {
        let mut out: Vec<f32> = t
            .heatmap
            .iter()
            .map(|&p| {
                let p = p.clamp(1e-4, 1.0 - 1e-4);
                (p / (1.0 - p)).ln()
            })
            .collect();
        out.extend(&t.boxes);
        assert_eq!(out.len(), (classes + 4) * t.mask.len());
        out
    }

    #[test]
    fn iou_of_hand_worked_boxes() {
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_same_class_boxes_only() {
        let det = |x: f32, score, class| Detection {
            bbox: [x, 0.0, x + 10.0, 10.0],
            score,
            class,
        };
        let kept = nms(
            vec![
                det(1.0, 0.6, 0),
                det(0.0, 0.9, 0),
                det(0.0, 0.8, 1),
                det(30.0, 0.1, 0),
            ],
            0.5,
        );
        assert_eq!(
            kept,
            vec![det(0.0, 0.9, 0), det(0.0, 0.8, 1), det(30.0, 0.1, 0)]
        );
    }

    #[test]
    fn decoding_a_perfect_output_gives_back_the_encoded_boxes() {
        let boxes = [[4.0, 8.0, 20.0, 16.0], [30.0, 30.0, 62.0, 60.0]];
        let labels = [1, 0];
        let t = encode(&boxes, &labels, 2, [16, 16], 4);
        assert_eq!(t.objects, 2);
        assert_eq!(t.mask.iter().sum::<f32>(), 2.0);
        let out = perfect_output(&t, 2);
        // The submitted image was twice the input size: boxes come back scaled.
        let dets = decode(&out, 2, [16, 16], &DECODING, [2.0, 2.0], [128.0, 128.0]);
        assert_eq!(dets.len(), 2, "{dets:?}");
        for (b, l) in boxes.iter().zip(labels) {
            let found = dets.iter().find(|d| d.class == l).unwrap();
            for k in 0..4 {
                assert!(
                    (found.bbox[k] - 2.0 * b[k]).abs() < 1e-3,
                    "{found:?} vs {b:?}"
                );
            }
            assert!(found.score > 0.99);
        }
    }

    #[test]
    fn boxes_are_clipped_and_degenerate_boxes_are_not_encoded() {
        let t = encode(&[[5.0, 5.0, 5.0, 9.0]], &[0], 1, [4, 4], 4);
        assert_eq!(t.objects, 0);
        // Centre near the corner, box larger than the image: clipped to the bounds.
        let t = encode(&[[-8.0, -8.0, 10.0, 10.0]], &[0], 1, [4, 4], 4);
        let dets = decode(
            &perfect_output(&t, 1),
            1,
            [4, 4],
            &DECODING,
            [1.0, 1.0],
            [16.0, 16.0],
        );
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].bbox[0], 0.0);
        assert_eq!(dets[0].bbox[1], 0.0);
    }
}
