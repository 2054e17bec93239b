//! COCO instances (`annotations/instances_<split>.json`): boxes for detection, and polygons or
//! run-length encodings rasterised to label masks for semantic segmentation.
//!
//! Layout: `ROOT/annotations/instances_train2017.json` with images in `ROOT/train2017/` (or
//! `instances_train.json` and `train/`), and `val2017`/`val` for validation. Category ids map to
//! contiguous classes in increasing id order; crowd annotations are kept but not scored
//! (detection) or ignored (segmentation, label 255).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::annotated::{DetectionSample, IGNORE_LABEL, Object, SegmentationSample, TaskDataset};
use super::image::decode_file;
use super::voc::clip_box;
use super::{DataError, Split, check_index};

#[derive(Debug, Deserialize)]
struct InstancesFile {
    images: Vec<ImageEntry>,
    annotations: Vec<Annotation>,
    categories: Vec<Category>,
}

#[derive(Debug, Deserialize)]
struct ImageEntry {
    id: u64,
    file_name: String,
    width: usize,
    height: usize,
}

#[derive(Debug, Deserialize)]
struct Category {
    id: u64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Annotation {
    id: u64,
    image_id: u64,
    category_id: u64,
    bbox: [f32; 4],
    #[serde(default)]
    iscrowd: u8,
    #[serde(default)]
    segmentation: Option<Segmentation>,
}

/// COCO's two encodings of an object's pixels.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Segmentation {
    /// Polygons `[x0, y0, x1, y1, …]` in pixels.
    Polygons(Vec<Vec<f32>>),
    /// Column-major run lengths, starting with background.
    Rle { counts: RleCounts, size: [usize; 2] },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RleCounts {
    Plain(Vec<u64>),
    /// pycocotools' compressed string form.
    Compressed(String),
}

/// One image with its annotations, already mapped to classes.
#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    width: usize,
    height: usize,
    objects: Vec<(Object, Option<Segmentation>)>,
}

/// A COCO split, for detection or segmentation.
pub struct Coco {
    annotations: PathBuf,
    entries: Vec<Entry>,
    object_classes: Vec<String>,
    segmentation_classes: Vec<String>,
}

fn bad(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::BadFormat {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Coco {
    pub fn open(root: &Path, split: Split) -> Result<Self, DataError> {
        let names: &[&str] = match split {
            Split::Train => &["train2017", "train"],
            Split::Val => &["val2017", "val"],
        };
        let (annotations, images) = names
            .iter()
            .map(|n| {
                (
                    root.join("annotations").join(format!("instances_{n}.json")),
                    root.join(n),
                )
            })
            .find(|(a, _)| a.exists())
            .ok_or_else(|| DataError::Empty {
                what: root.display().to_string(),
                hint: format!(
                    "expected annotations/instances_{}.json",
                    names.join(".json or instances_")
                ),
            })?;
        let text = std::fs::read_to_string(&annotations).map_err(|source| DataError::Io {
            path: annotations.clone(),
            source,
        })?;
        Self::parse(&text, &annotations, &images)
    }

    /// Parses an instances file whose images live in `images`.
    pub fn parse(text: &str, path: &Path, images: &Path) -> Result<Self, DataError> {
        let file: InstancesFile =
            serde_json::from_str(text).map_err(|e| bad(path, e.to_string()))?;
        let mut categories = file.categories;
        categories.sort_by_key(|c| c.id);
        let class_of: HashMap<u64, usize> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        let mut entries: Vec<Entry> = Vec::with_capacity(file.images.len());
        let mut entry_of = HashMap::new();
        for image in &file.images {
            entry_of.insert(image.id, entries.len());
            entries.push(Entry {
                file: images.join(&image.file_name),
                width: image.width,
                height: image.height,
                objects: Vec::new(),
            });
        }
        for ann in file.annotations {
            let at = |reason: String| bad(path, format!("annotation {}: {reason}", ann.id));
            let &index = entry_of
                .get(&ann.image_id)
                .ok_or_else(|| at(format!("unknown image_id {}", ann.image_id)))?;
            let &class = class_of
                .get(&ann.category_id)
                .ok_or_else(|| at(format!("unknown category_id {}", ann.category_id)))?;
            let [x, y, w, h] = ann.bbox;
            if !(w > 0.0 && h > 0.0 && x.is_finite() && y.is_finite()) {
                return Err(at(format!("bbox {:?} has no area", ann.bbox)));
            }
            let entry = &mut entries[index];
            let bbox = clip_box(
                [x, y, x + w, y + h],
                entry.width as f32,
                entry.height as f32,
                path,
                &format!("annotation {}", ann.id),
            )?;
            let object = Object {
                bbox,
                class,
                ignore: ann.iscrowd != 0,
            };
            entry.objects.push((object, ann.segmentation));
        }
        if entries.is_empty() {
            return Err(DataError::Empty {
                what: path.display().to_string(),
                hint: "the file lists no images".into(),
            });
        }
        let class_names: Vec<String> = categories.into_iter().map(|c| c.name).collect();
        if class_names.len() >= IGNORE_LABEL as usize {
            return Err(bad(path, "more categories than a label mask can hold"));
        }
        Ok(Self {
            annotations: path.to_path_buf(),
            entries,
            segmentation_classes: std::iter::once("background".to_string())
                .chain(class_names.iter().cloned())
                .collect(),
            object_classes: class_names,
        })
    }

    fn describe(&self) -> String {
        format!(
            "COCO {} ({} images, {} categories)",
            self.annotations.display(),
            self.entries.len(),
            self.object_classes.len()
        )
    }
}

impl TaskDataset<DetectionSample> for Coco {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn class_names(&self) -> &[String] {
        &self.object_classes
    }

    fn get(&self, index: usize) -> Result<DetectionSample, DataError> {
        check_index(index, self.entries.len())?;
        let entry = &self.entries[index];
        let image = decode_file(&entry.file)?;
        // Annotations are in the declared size; follow the file if it differs.
        let (sx, sy) = (
            image.width as f32 / entry.width as f32,
            image.height as f32 / entry.height as f32,
        );
        let objects = entry
            .objects
            .iter()
            .map(|(o, _)| Object {
                bbox: [
                    o.bbox[0] * sx,
                    o.bbox[1] * sy,
                    o.bbox[2] * sx,
                    o.bbox[3] * sy,
                ],
                ..*o
            })
            .collect();
        Ok(DetectionSample { image, objects })
    }

    fn describe(&self) -> String {
        Coco::describe(self)
    }
}

impl TaskDataset<SegmentationSample> for Coco {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn class_names(&self) -> &[String] {
        &self.segmentation_classes
    }

    fn get(&self, index: usize) -> Result<SegmentationSample, DataError> {
        check_index(index, self.entries.len())?;
        let entry = &self.entries[index];
        let image = decode_file(&entry.file)?;
        let (w, h) = (entry.width, entry.height);
        super::voc::check_mask_size(&entry.file, [w, h], [image.width, image.height])?;
        let mut mask = vec![0u8; w * h];
        for (object, segmentation) in &entry.objects {
            let Some(segmentation) = segmentation else {
                continue;
            };
            let pixels = rasterize(segmentation, [w, h]).map_err(|reason| {
                bad(
                    &self.annotations,
                    format!("{}: {reason}", entry.file.display()),
                )
            })?;
            let label = if object.ignore {
                IGNORE_LABEL
            } else {
                object.class as u8 + 1
            };
            for (m, on) in mask.iter_mut().zip(pixels) {
                if on {
                    *m = label;
                }
            }
        }
        Ok(SegmentationSample { image, mask })
    }

    fn describe(&self) -> String {
        Coco::describe(self)
    }
}

/// The pixels (row-major, `w * h`) an object covers.
pub fn rasterize(segmentation: &Segmentation, [w, h]: [usize; 2]) -> Result<Vec<bool>, String> {
    match segmentation {
        Segmentation::Polygons(polygons) => {
            let mut out = vec![false; w * h];
            for polygon in polygons {
                if polygon.len() < 6 || polygon.len() % 2 != 0 {
                    return Err(format!(
                        "a polygon needs at least 3 (x, y) pairs, got {} numbers",
                        polygon.len()
                    ));
                }
                fill_polygon(polygon, [w, h], &mut out);
            }
            Ok(out)
        }
        Segmentation::Rle { counts, size } => {
            if *size != [h, w] {
                return Err(format!(
                    "RLE size {size:?} differs from the image's [{h}, {w}]"
                ));
            }
            let counts = match counts {
                RleCounts::Plain(c) => c.clone(),
                RleCounts::Compressed(s) => exemplar_inference::rle::from_string(s)?,
            };
            let total: u64 = counts.iter().sum();
            if total != (w * h) as u64 {
                return Err(format!(
                    "RLE covers {total} pixels, the image has {}",
                    w * h
                ));
            }
            let mut out = vec![false; w * h];
            let mut position = 0usize;
            for (run, &count) in counts.iter().enumerate() {
                if run % 2 == 1 {
                    for p in position..position + count as usize {
                        // Column-major: p = x * h + y.
                        out[(p % h) * w + p / h] = true;
                    }
                }
                position += count as usize;
            }
            Ok(out)
        }
    }
}

/// Even-odd fill of a polygon, testing pixel centres.
fn fill_polygon(polygon: &[f32], [w, h]: [usize; 2], out: &mut [bool]) {
    let points: Vec<[f32; 2]> = polygon.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
    for y in 0..h {
        let cy = y as f32 + 0.5;
        let mut crossings: Vec<f32> = Vec::new();
        for i in 0..points.len() {
            let [x0, y0] = points[i];
            let [x1, y1] = points[(i + 1) % points.len()];
            if (y0 <= cy) != (y1 <= cy) {
                crossings.push(x0 + (cy - y0) / (y1 - y0) * (x1 - x0));
            }
        }
        crossings.sort_by(f32::total_cmp);
        for pair in crossings.chunks_exact(2) {
            for x in 0..w {
                let cx = x as f32 + 0.5;
                if cx >= pair[0] && cx < pair[1] {
                    out[y * w + x] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rle_is_column_major() {
        // 2 rows × 3 columns; runs: 1 off, 2 on, 3 off → pixels (y=1,x=0) and (y=0,x=1).
        let seg = Segmentation::Rle {
            counts: RleCounts::Plain(vec![1, 2, 3]),
            size: [2, 3],
        };
        let out = rasterize(&seg, [3, 2]).unwrap();
        assert_eq!(out, vec![false, true, false, true, false, false]);
    }

    #[test]
    fn polygons_fill_pixel_centres() {
        let seg = Segmentation::Polygons(vec![vec![1.0, 1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0]]);
        let out = rasterize(&seg, [4, 4]).unwrap();
        let on: Vec<usize> = (0..16).filter(|&i| out[i]).collect();
        assert_eq!(on, vec![5, 6, 9, 10]);
        let err = rasterize(&Segmentation::Polygons(vec![vec![1.0, 2.0]]), [4, 4]).unwrap_err();
        assert!(err.contains("3 (x, y) pairs"), "{err}");
    }

    #[test]
    fn bad_references_name_the_annotation() {
        let text = r#"{"images":[{"id":1,"file_name":"a.jpg","width":10,"height":10}],
            "categories":[{"id":3,"name":"cat"}],
            "annotations":[{"id":7,"image_id":2,"category_id":3,"bbox":[0,0,1,1]}]}"#;
        let err = Coco::parse(text, Path::new("i.json"), Path::new("img"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("annotation 7") && err.contains("image_id 2"),
            "{err}"
        );
        let text = text
            .replace("\"image_id\":2", "\"image_id\":1")
            .replace("[0,0,1,1]", "[0,0,0,1]");
        let err = Coco::parse(&text, Path::new("i.json"), Path::new("img"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("annotation 7") && err.contains("no area"),
            "{err}"
        );
    }
}
