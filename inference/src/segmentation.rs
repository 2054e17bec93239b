//! Semantic segmentation outputs: per-pixel argmax and nearest-neighbour resizing of label
//! masks, so a mask predicted at the network's input size lands on the submitted image's pixels.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::rle;
use crate::served::{Output, ServedModel, ServedTask};

/// Per-pixel argmax of one image's logits `[classes, h, w]` (row-major) into class indices.
pub fn argmax(logits: &[f32], classes: usize, [h, w]: [usize; 2]) -> Vec<u8> {
    assert!(classes <= 256, "class indices must fit a byte");
    assert_eq!(
        logits.len(),
        classes * h * w,
        "logits do not match their shape"
    );
    let plane = h * w;
    (0..plane)
        .map(|p| {
            let mut best = 0;
            for c in 1..classes {
                if logits[c * plane + p] > logits[best * plane + p] {
                    best = c;
                }
            }
            best as u8
        })
        .collect()
}

/// Nearest-neighbour resize of a label mask (labels must never be interpolated), with
/// pixel-centre alignment.
pub fn resize_nearest(mask: &[u8], [w, h]: [usize; 2], [out_w, out_h]: [usize; 2]) -> Vec<u8> {
    assert_eq!(mask.len(), w * h, "mask does not match its size");
    if (w, h) == (out_w, out_h) {
        return mask.to_vec();
    }
    let source = |o: usize, out: usize, n: usize| {
        (((o as f32 + 0.5) * n as f32 / out as f32) as usize).min(n - 1)
    };
    let mut out = Vec::with_capacity(out_w * out_h);
    for y in 0..out_h {
        let sy = source(y, out_h, h);
        for x in 0..out_w {
            out.push(mask[sy * w + source(x, out_w, w)]);
        }
    }
    out
}

/// A label mask as an 8-bit greyscale PNG whose pixel values are the class indices (the form
/// the server returns: compact, lossless, and readable by any image library).
pub fn to_png(mask: &[u8], [width, height]: [usize; 2]) -> Vec<u8> {
    assert_eq!(mask.len(), width * height, "mask does not match its size");
    let image = image::GrayImage::from_raw(width as u32, height as u32, mask.to_vec())
        .expect("buffer size matches dimensions");
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding to memory cannot fail");
    out.into_inner()
}

/// `/v1/segment`'s option.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentQuery {
    /// png (default): one PNG of class indices; rle: COCO RLE per class present
    pub format: Option<String>,
}

/// How a segmentation mask is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskFormat {
    /// One PNG of class indices.
    Png,
    /// COCO RLE per class present.
    Rle,
}

/// `/v1/segment` knows two mask formats.
#[derive(Debug, thiserror::Error)]
#[error("unknown mask format '{0}' (png or rle)")]
pub struct UnknownMaskFormat(pub String);

/// A PNG of class indices, one byte per pixel.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PngMask {
    /// Always `png`.
    pub format: &'static str,
    /// The PNG file, base64-encoded.
    pub data: String,
}

/// COCO run-length encoding of one class's pixels (column-major counts).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rle {
    /// `[height, width]`.
    pub size: [usize; 2],
    pub counts: String,
}

/// One class present in the mask, as COCO RLE.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClassMask {
    pub class_id: usize,
    pub class_name: String,
    pub rle: Rle,
}

/// `POST /v1/segment`: `mask` by default, `masks` with `format=rle`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentAnswer {
    pub model: String,
    pub width: usize,
    pub height: usize,
    /// Class names, indexed by the mask's values.
    pub classes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<PngMask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masks: Option<Vec<ClassMask>>,
}

/// Semantic segmentation, served: the per-pixel classes at the submitted image's size.
pub struct Segment;

impl ServedTask for Segment {
    const TASK: &'static str = "segmentation";
    const PATH: &'static str = "/v1/segment";
    const SUMMARY: &'static str =
        "Semantic segmentation: a PNG of class indices (or per-class COCO RLE with format=rle)";
    type Query = SegmentQuery;
    type Options = MaskFormat;
    type Error = UnknownMaskFormat;
    type Answer = SegmentAnswer;

    fn options(_: &ServedModel, query: SegmentQuery) -> Result<MaskFormat, UnknownMaskFormat> {
        match query.format.as_deref().unwrap_or("png") {
            "png" => Ok(MaskFormat::Png),
            "rle" => Ok(MaskFormat::Rle),
            format => Err(UnknownMaskFormat(format.to_string())),
        }
    }

    fn answer(
        model: &ServedModel,
        format: MaskFormat,
        [width, height]: [usize; 2],
        output: Output,
    ) -> SegmentAnswer {
        let classes = output.shape[0];
        let predicted = argmax(&output.values, classes, [output.shape[1], output.shape[2]]);
        let mask = resize_nearest(
            &predicted,
            [output.shape[2], output.shape[1]],
            [width, height],
        );
        let names = &model.card.class_names;
        let mut answer = SegmentAnswer {
            model: model.name.to_string(),
            width,
            height,
            classes: names.clone(),
            mask: None,
            masks: None,
        };
        match format {
            MaskFormat::Png => {
                answer.mask = Some(PngMask {
                    format: "png",
                    data: BASE64.encode(to_png(&mask, [width, height])),
                });
            }
            MaskFormat::Rle => {
                let present = (0..classes)
                    .filter(|&c| mask.contains(&(c as u8)))
                    .map(|c| {
                        let encoded = rle::encode(width, height, |i| mask[i] == c as u8);
                        ClassMask {
                            class_id: c,
                            class_name: names[c].clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_masks_keep_class_indices() {
        let mask = [0u8, 3, 255, 7, 1, 0];
        let png = to_png(&mask, [3, 2]);
        let back = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!((back.width(), back.height()), (3, 2));
        assert_eq!(back.into_raw(), mask.to_vec());
    }

    #[test]
    fn argmax_picks_the_largest_logit_per_pixel() {
        // 3 classes, 1×2 pixels.
        let logits = [
            0.0, 5.0, /* class 1 */ 1.0, 1.0, /* class 2 */ -1.0, 6.0,
        ];
        assert_eq!(argmax(&logits, 3, [1, 2]), vec![1, 2]);
    }

    #[test]
    fn nearest_resize_keeps_labels_and_blocks() {
        let mask = [1, 2, 3, 4];
        assert_eq!(
            resize_nearest(&mask, [2, 2], [4, 4]),
            vec![1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]
        );
        assert_eq!(resize_nearest(&[7; 16], [4, 4], [3, 1]), vec![7, 7, 7]);
    }
}
