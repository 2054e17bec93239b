//! Semantic segmentation outputs: per-pixel argmax and nearest-neighbour resizing of label
//! masks, so a mask predicted at the network's input size lands on the submitted image's pixels.

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
