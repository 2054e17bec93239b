//! Cityscapes semantic segmentation: `leftImg8bit/<split>/<city>/<name>_leftImg8bit.png` with
//! `gtFine/<split>/<city>/<name>_gtFine_labelIds.png`, mapped to the standard 19 training
//! classes (cityscapesScripts' `trainId`); every other label id becomes 255 and is ignored.

use std::path::{Path, PathBuf};

use super::annotated::{IGNORE_LABEL, SegmentationSample, TaskDataset};
use super::image::decode_file;
use super::voc::{check_mask_size, read_index_png};
use super::{DataError, Split, check_index};

/// The 19 evaluated classes, in `trainId` order.
pub const CITYSCAPES_CLASSES: [&str; 19] = [
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
];

/// `trainId` of each label id 0–33 (cityscapesScripts `labels.py`); 255 = ignored.
const TRAIN_ID: [u8; 34] = [
    255, 255, 255, 255, 255, 255, 255, 0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9,
    10, 11, 12, 13, 14, 15, 255, 255, 16, 17, 18,
];

/// The training class of a `labelIds` pixel.
pub fn train_id(label_id: u8) -> u8 {
    TRAIN_ID
        .get(label_id as usize)
        .copied()
        .unwrap_or(IGNORE_LABEL)
}

pub struct Cityscapes {
    root: PathBuf,
    split: &'static str,
    /// `(image, label ids)` pairs.
    pairs: Vec<(PathBuf, PathBuf)>,
    class_names: Vec<String>,
}

impl Cityscapes {
    pub fn open(root: &Path, split: Split) -> Result<Self, DataError> {
        let split = match split {
            Split::Train => "train",
            Split::Val => "val",
        };
        let images = root.join("leftImg8bit").join(split);
        let mut pairs = Vec::new();
        let read_dir = |dir: &Path| {
            std::fs::read_dir(dir).map_err(|source| DataError::Io {
                path: dir.to_path_buf(),
                source,
            })
        };
        let mut cities: Vec<PathBuf> = read_dir(&images)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        cities.sort();
        for city in cities {
            let mut files: Vec<PathBuf> = read_dir(&city)?.flatten().map(|e| e.path()).collect();
            files.sort();
            for image in files {
                let name = image.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some(stem) = name.strip_suffix("_leftImg8bit.png") else {
                    continue;
                };
                let city_name = city.file_name().unwrap_or_default();
                let labels = root
                    .join("gtFine")
                    .join(split)
                    .join(city_name)
                    .join(format!("{stem}_gtFine_labelIds.png"));
                if !labels.exists() {
                    return Err(DataError::BadFormat {
                        path: image.clone(),
                        reason: format!("no label file {}", labels.display()),
                    });
                }
                pairs.push((image, labels));
            }
        }
        if pairs.is_empty() {
            return Err(DataError::Empty {
                what: images.display().to_string(),
                hint: "expected <city>/<name>_leftImg8bit.png files".into(),
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            split,
            pairs,
            class_names: CITYSCAPES_CLASSES.iter().map(|s| s.to_string()).collect(),
        })
    }
}

impl TaskDataset<SegmentationSample> for Cityscapes {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn get(&self, index: usize) -> Result<SegmentationSample, DataError> {
        check_index(index, self.pairs.len())?;
        let (image_path, labels_path) = &self.pairs[index];
        let image = decode_file(image_path)?;
        let (ids, w, h) = read_index_png(labels_path)?;
        check_mask_size(labels_path, [w, h], [image.width, image.height])?;
        Ok(SegmentationSample {
            image,
            mask: ids.into_iter().map(train_id).collect(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "Cityscapes {} {} ({} images, 19 classes)",
            self.root.display(),
            self.split,
            self.pairs.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_ids_map_to_the_nineteen_train_ids() {
        assert_eq!(train_id(7), 0); // road
        assert_eq!(train_id(26), 13); // car
        assert_eq!(train_id(33), 18); // bicycle
        assert_eq!(train_id(0), 255); // unlabeled
        assert_eq!(train_id(29), 255); // caravan
        assert_eq!(train_id(200), 255);
        let used: Vec<u8> = (0..34).map(train_id).filter(|&t| t != 255).collect();
        assert_eq!(used, (0..19).collect::<Vec<u8>>());
    }
}
