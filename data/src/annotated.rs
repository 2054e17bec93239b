//! Annotated samples for the transfer tasks (boxes, label masks, landmarks) and the geometric
//! transforms that keep annotations consistent with their image.
//!
//! Every annotated sample can be cropped-and-resized and flipped: boxes are mapped and clipped,
//! masks are resampled by nearest neighbour (labels are never interpolated), points are mapped
//! and left/right points swap under a flip.

use std::path::PathBuf;

use super::image::decode_file;
use super::{DataError, Image, check_index};

/// A detection ground-truth object; `[x0, y0, x1, y1]` in pixels of its image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub bbox: [f32; 4],
    pub class: usize,
    /// Not scored: VOC's `difficult` flag, COCO's `iscrowd`.
    pub ignore: bool,
}

#[derive(Debug, Clone)]
pub struct DetectionSample {
    pub image: Image,
    pub objects: Vec<Object>,
}

/// A label mask, `width * height` class indices (row-major) of the same size as the image.
#[derive(Debug, Clone)]
pub struct SegmentationSample {
    pub image: Image,
    pub mask: Vec<u8>,
}

/// Landmarks as `(x, y)` pixel coordinates of the image.
#[derive(Debug, Clone)]
pub struct LandmarkSample {
    pub image: Image,
    pub points: Vec<[f32; 2]>,
}

/// An image with its class, for classification fine-tuning.
#[derive(Debug, Clone)]
pub struct ClassSample {
    pub image: Image,
    pub label: i64,
}

/// Pixel value of masks that is not scored and not trained on.
pub const IGNORE_LABEL: u8 = 255;

/// A collection of annotated images.
pub trait TaskDataset<S>: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class names (detection, segmentation) or point names (landmarks).
    fn class_names(&self) -> &[String];

    fn get(&self, index: usize) -> Result<S, DataError>;

    /// One line saying what this is.
    fn describe(&self) -> String;
}

/// Landmark images on disk, each with its points: what the CelebA list and `.pts` folders
/// open as.
pub struct LandmarkFiles {
    /// What they are, for [`TaskDataset::describe`].
    pub(crate) what: String,
    pub(crate) samples: Vec<(PathBuf, Vec<[f32; 2]>)>,
    pub(crate) point_names: Vec<String>,
}

impl TaskDataset<LandmarkSample> for LandmarkFiles {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn class_names(&self) -> &[String] {
        &self.point_names
    }

    fn get(&self, index: usize) -> Result<LandmarkSample, DataError> {
        check_index(index, self.samples.len())?;
        let (path, points) = &self.samples[index];
        Ok(LandmarkSample {
            image: decode_file(path)?,
            points: points.clone(),
        })
    }

    fn describe(&self) -> String {
        format!("{} ({} images)", self.what, self.samples.len())
    }
}

/// What geometric augmentation needs from a sample.
pub trait Annotated: Sized + Send + 'static {
    fn image(&self) -> &Image;
    fn image_mut(&mut self) -> &mut Image;
    /// The `[x0, y0, w, h]` region resampled to `out_w × out_h`, annotations mapped along.
    fn crop_resize(self, region: [f32; 4], out_w: usize, out_h: usize) -> Self;
    /// Mirrored left to right; `pairs` lists points that swap (landmarks only).
    fn flip(self, pairs: &[[usize; 2]]) -> Self;

    /// The whole sample resized.
    fn resize(self, out_w: usize, out_h: usize) -> Self {
        let (w, h) = (self.image().width as f32, self.image().height as f32);
        self.crop_resize([0.0, 0.0, w, h], out_w, out_h)
    }
}

/// [`Annotated::image`] and [`Annotated::image_mut`] for a sample whose picture is its `image`
/// field (every sample here).
macro_rules! image_field {
    () => {
        fn image(&self) -> &Image {
            &self.image
        }
        fn image_mut(&mut self) -> &mut Image {
            &mut self.image
        }
    };
}

/// Boxes keep at least this fraction of their area after a crop, or are dropped.
const MIN_VISIBLE: f32 = 0.3;

impl Annotated for DetectionSample {
    image_field!();

    fn crop_resize(self, region: [f32; 4], out_w: usize, out_h: usize) -> Self {
        let [x0, y0, w, h] = region;
        let (sx, sy) = (out_w as f32 / w, out_h as f32 / h);
        let objects = self
            .objects
            .into_iter()
            .filter_map(|o| {
                let b = o.bbox;
                let mapped = [
                    (b[0] - x0) * sx,
                    (b[1] - y0) * sy,
                    (b[2] - x0) * sx,
                    (b[3] - y0) * sy,
                ];
                let clipped = [
                    mapped[0].clamp(0.0, out_w as f32),
                    mapped[1].clamp(0.0, out_h as f32),
                    mapped[2].clamp(0.0, out_w as f32),
                    mapped[3].clamp(0.0, out_h as f32),
                ];
                let full = area(mapped);
                let kept = area(clipped);
                (kept >= 1.0 && kept >= MIN_VISIBLE * full).then_some(Object { bbox: clipped, ..o })
            })
            .collect();
        Self {
            image: self.image.resample(region, out_w, out_h),
            objects,
        }
    }

    fn flip(mut self, _pairs: &[[usize; 2]]) -> Self {
        let w = self.image.width as f32;
        self.image.flip_horizontal();
        for o in &mut self.objects {
            o.bbox = [w - o.bbox[2], o.bbox[1], w - o.bbox[0], o.bbox[3]];
        }
        self
    }
}

fn area(b: [f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

impl Annotated for SegmentationSample {
    image_field!();

    fn crop_resize(self, region: [f32; 4], out_w: usize, out_h: usize) -> Self {
        let mask = resample_mask(
            &self.mask,
            [self.image.width, self.image.height],
            region,
            [out_w, out_h],
        );
        Self {
            image: self.image.resample(region, out_w, out_h),
            mask,
        }
    }

    fn flip(mut self, _pairs: &[[usize; 2]]) -> Self {
        let w = self.image.width;
        self.image.flip_horizontal();
        for row in self.mask.chunks_exact_mut(w) {
            row.reverse();
        }
        self
    }
}

impl Annotated for LandmarkSample {
    image_field!();

    fn crop_resize(self, region: [f32; 4], out_w: usize, out_h: usize) -> Self {
        let [x0, y0, w, h] = region;
        let (sx, sy) = (out_w as f32 / w, out_h as f32 / h);
        Self {
            image: self.image.resample(region, out_w, out_h),
            points: self
                .points
                .iter()
                .map(|&[x, y]| [(x - x0) * sx, (y - y0) * sy])
                .collect(),
        }
    }

    fn flip(mut self, pairs: &[[usize; 2]]) -> Self {
        let w = self.image.width as f32;
        self.image.flip_horizontal();
        for p in &mut self.points {
            p[0] = w - p[0];
        }
        // The subject's left eye is on the image's right after mirroring: swap the names back.
        for &[a, b] in pairs {
            if a < self.points.len() && b < self.points.len() {
                self.points.swap(a, b);
            }
        }
        self
    }
}

impl Annotated for ClassSample {
    image_field!();

    fn crop_resize(self, region: [f32; 4], out_w: usize, out_h: usize) -> Self {
        Self {
            image: self.image.resample(region, out_w, out_h),
            label: self.label,
        }
    }

    fn flip(mut self, _pairs: &[[usize; 2]]) -> Self {
        self.image.flip_horizontal();
        self
    }
}

/// A classification [`Dataset`](super::Dataset) seen as annotated samples.
pub struct Labelled(pub std::sync::Arc<dyn super::Dataset>);

impl TaskDataset<ClassSample> for Labelled {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn class_names(&self) -> &[String] {
        self.0.class_names()
    }

    fn get(&self, index: usize) -> Result<ClassSample, DataError> {
        let (image, label) = self.0.get(index)?;
        Ok(ClassSample { image, label })
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// Nearest-neighbour resampling of the `[x0, y0, w, h]` region of a label mask to
/// `out_w × out_h`; pixels outside the source are [`IGNORE_LABEL`].
pub fn resample_mask(
    mask: &[u8],
    [width, height]: [usize; 2],
    [x0, y0, w, h]: [f32; 4],
    [out_w, out_h]: [usize; 2],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        let sy = (y0 + (oy as f32 + 0.5) * h / out_h as f32).floor();
        for ox in 0..out_w {
            let sx = (x0 + (ox as f32 + 0.5) * w / out_w as f32).floor();
            let inside = sx >= 0.0 && sy >= 0.0 && (sx as usize) < width && (sy as usize) < height;
            out.push(if inside {
                mask[sy as usize * width + sx as usize]
            } else {
                IGNORE_LABEL
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(w: usize, h: usize) -> Image {
        Image::new(w, h)
    }

    #[test]
    fn flipping_mirrors_boxes_masks_and_swaps_paired_points() {
        let det = DetectionSample {
            image: blank(10, 4),
            objects: vec![Object {
                bbox: [1.0, 0.0, 4.0, 2.0],
                class: 0,
                ignore: false,
            }],
        }
        .flip(&[]);
        assert_eq!(det.objects[0].bbox, [6.0, 0.0, 9.0, 2.0]);

        let seg = SegmentationSample {
            image: blank(3, 2),
            mask: vec![1, 2, 3, 4, 5, 6],
        }
        .flip(&[]);
        assert_eq!(seg.mask, vec![3, 2, 1, 6, 5, 4]);

        let lm = LandmarkSample {
            image: blank(10, 10),
            points: vec![[2.0, 3.0], [7.0, 3.0], [5.0, 5.0]],
        }
        .flip(&[[0, 1]]);
        // The left point (x=2) becomes x=8 and, as the other eye, moves to slot 1.
        assert_eq!(lm.points, vec![[3.0, 3.0], [8.0, 3.0], [5.0, 5.0]]);
    }

    #[test]
    fn cropping_maps_clips_and_drops_boxes() {
        let sample = DetectionSample {
            image: blank(100, 100),
            objects: vec![
                Object {
                    bbox: [10.0, 10.0, 30.0, 30.0],
                    class: 1,
                    ignore: false,
                },
                // Only 10% inside the crop: dropped.
                Object {
                    bbox: [45.0, 0.0, 95.0, 10.0],
                    class: 2,
                    ignore: false,
                },
                // Half inside: clipped.
                Object {
                    bbox: [40.0, 20.0, 60.0, 30.0],
                    class: 3,
                    ignore: true,
                },
            ],
        };
        let out = sample.crop_resize([0.0, 0.0, 50.0, 50.0], 25, 25);
        assert_eq!(out.objects.len(), 2);
        assert_eq!(out.objects[0].bbox, [5.0, 5.0, 15.0, 15.0]);
        assert_eq!(out.objects[1].bbox, [20.0, 10.0, 25.0, 15.0]);
        assert!(out.objects[1].ignore);
    }

    #[test]
    fn masks_resample_by_nearest_neighbour_with_ignore_outside() {
        let mask = vec![0, 1, 2, 3];
        // Upscale 2×2 → 4×4: blocks.
        let up = resample_mask(&mask, [2, 2], [0.0, 0.0, 2.0, 2.0], [4, 4]);
        assert_eq!(&up[..8], &[0, 0, 1, 1, 0, 0, 1, 1]);
        // A region hanging off the right edge.
        let off = resample_mask(&mask, [2, 2], [1.0, 0.0, 2.0, 1.0], [2, 1]);
        assert_eq!(off, vec![1, IGNORE_LABEL]);
    }
}
