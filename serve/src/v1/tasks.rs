//! The five `/v1` routes' own parts: which options each reads, and how a model's output becomes
//! its answer ([`super::TaskRoute`]).

use base64::Engine;
use exemplar_inference::card::TaskSpec;
use exemplar_inference::detection::DetectionDecoding;
use exemplar_inference::{classification, detection, landmarks, rle, segmentation};

use super::answers::*;
use super::{Params, TaskRoute};
use crate::error::ApiError;
use crate::predict::{Size, size_of};
use crate::registry::Model;
use crate::runtime::Output;

pub struct Detect;

impl TaskRoute for Detect {
    const TASK: &'static str = "detection";
    type Options = DetectionDecoding;
    type Answer = DetectAnswer;

    /// The card's decoding, with `score_threshold` from the query if given.
    fn options(model: &Model, params: &Params) -> Result<DetectionDecoding, ApiError> {
        let TaskSpec::Detection(decoding) = &model.card.task else {
            unreachable!("the route picked a detection model");
        };
        let mut decoding = *decoding;
        if let Some(threshold) = params.score_threshold {
            if !(0.0..=1.0).contains(&threshold) {
                return Err(ApiError::bad_request(format!(
                    "score_threshold must be between 0 and 1, not {threshold}"
                )));
            }
            decoding.score_threshold = threshold;
        }
        Ok(decoding)
    }

    fn answer(
        model: &Model,
        decoding: DetectionDecoding,
        image: Size,
        output: Output,
    ) -> DetectAnswer {
        let classes = model.card.class_names.len();
        let [w, h] = size_of(&image);
        let [input_w, input_h] = model.input_size().map(|n| n as f32);
        let detections = detection::decode(
            &output.values,
            classes,
            [output.shape[1], output.shape[2]],
            &decoding,
            [w / input_w, h / input_h],
            [w, h],
        );
        let detections = detections
            .iter()
            .map(|d| {
                let [x0, y0, x1, y1] = d.bbox;
                Detection {
                    bbox: [x0, y0, x1 - x0, y1 - y0],
                    score: d.score,
                    class_id: d.class,
                    class_name: model.card.class_names[d.class].clone(),
                }
            })
            .collect();
        DetectAnswer {
            model: model.name.clone(),
            width: image.width,
            height: image.height,
            detections,
        }
    }
}

pub struct Segment;

/// How a segmentation mask is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskFormat {
    /// One PNG of class indices.
    Png,
    /// COCO RLE per class present.
    Rle,
}

impl TaskRoute for Segment {
    const TASK: &'static str = "segmentation";
    type Options = MaskFormat;
    type Answer = SegmentAnswer;

    fn options(_: &Model, params: &Params) -> Result<MaskFormat, ApiError> {
        match params.format.as_deref().unwrap_or("png") {
            "png" => Ok(MaskFormat::Png),
            "rle" => Ok(MaskFormat::Rle),
            format => Err(ApiError::bad_request(format!(
                "unknown mask format '{format}' (png or rle)"
            ))),
        }
    }

    fn answer(model: &Model, format: MaskFormat, image: Size, output: Output) -> SegmentAnswer {
        let classes = output.shape[0];
        let predicted =
            segmentation::argmax(&output.values, classes, [output.shape[1], output.shape[2]]);
        let mask = segmentation::resize_nearest(
            &predicted,
            [output.shape[2], output.shape[1]],
            [image.width, image.height],
        );
        let mut answer = SegmentAnswer {
            model: model.name.clone(),
            width: image.width,
            height: image.height,
            classes: model.card.class_names.clone(),
            mask: None,
            masks: None,
        };
        match format {
            MaskFormat::Png => {
                let png = segmentation::to_png(&mask, [image.width, image.height]);
                answer.mask = Some(PngMask {
                    format: "png",
                    data: base64::engine::general_purpose::STANDARD.encode(png),
                });
            }
            MaskFormat::Rle => {
                let present = (0..classes)
                    .filter(|&c| mask.contains(&(c as u8)))
                    .map(|c| {
                        let encoded =
                            rle::encode(image.width, image.height, |i| mask[i] == c as u8);
                        ClassMask {
                            class_id: c,
                            class_name: model.card.class_names[c].clone(),
                            rle: Rle {
                                size: encoded.size,
                                counts: rle::to_string(&encoded.counts),
                            },
                        }
                    })
                    .collect();
                answer.masks = Some(present);
            }
        }
        answer
    }
}

pub struct Landmarks;

impl TaskRoute for Landmarks {
    const TASK: &'static str = "landmarks";
    type Options = ();
    type Answer = LandmarksAnswer;

    fn options(_: &Model, _: &Params) -> Result<(), ApiError> {
        Ok(())
    }

    fn answer(model: &Model, _: (), image: Size, output: Output) -> LandmarksAnswer {
        let points = landmarks::denormalize(&output.values, size_of(&image));
        let points = points
            .iter()
            .zip(&model.card.class_names)
            .map(|(&[x, y], name)| Point {
                name: name.clone(),
                x,
                y,
            })
            .collect();
        LandmarksAnswer {
            model: model.name.clone(),
            width: image.width,
            height: image.height,
            points,
        }
    }
}

pub struct Embed;

impl TaskRoute for Embed {
    const TASK: &'static str = "embedding";
    type Options = ();
    type Answer = EmbedAnswer;

    fn options(_: &Model, _: &Params) -> Result<(), ApiError> {
        Ok(())
    }

    fn answer(model: &Model, _: (), _: Size, output: Output) -> EmbedAnswer {
        EmbedAnswer {
            model: model.name.clone(),
            dim: output.values.len(),
            embedding: output.values,
        }
    }
}

pub struct Classify;

impl TaskRoute for Classify {
    const TASK: &'static str = "classification";
    /// How many classes to return.
    type Options = usize;
    type Answer = ClassifyAnswer;

    fn options(_: &Model, params: &Params) -> Result<usize, ApiError> {
        Ok(params.top_k.unwrap_or(5).max(1))
    }

    fn answer(model: &Model, top_k: usize, _: Size, output: Output) -> ClassifyAnswer {
        let top = classification::top_k(&output.values, top_k)
            .iter()
            .map(|&(c, p)| ClassScore {
                class_id: c,
                class_name: model.card.class_names[c].clone(),
                score: p,
            })
            .collect();
        ClassifyAnswer {
            model: model.name.clone(),
            top,
        }
    }
}
