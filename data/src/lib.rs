//! exemplar-data: the images the trainer learns from, and how they reach it.
//!
//! - datasets: the built-in synthetic scenes and faces ([`synthetic`]), ImageFolder directories,
//!   MNIST-style IDX files, and the transfer tasks' formats (VOC, COCO, Cityscapes, CelebA, `.pts`
//!   landmarks). Every dataset hands out decoded RGB images with their labels; the training loops
//!   never see file formats;
//! - [`augment`]: the two-view augmentations of pretraining and the fine-tuning presets;
//! - [`loader`]: batches built ahead of the trainer by worker threads, deterministic in
//!   `(seed, step)`.
//!
//! It links no burn: batches are plain `f32` buffers the trainer turns into tensors.

pub mod annotated;
pub mod augment;
pub mod celeba;
pub mod cityscapes;
pub mod coco;
pub mod idx;
pub mod image;
pub mod image_folder;
pub mod loader;
pub mod pts;
pub mod subset;
pub mod synthetic;
pub mod voc;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use self::annotated::{
    DetectionSample, LandmarkSample, Object, SegmentationSample, TaskDataset,
};
pub use self::image::Image;

/// What to do with an image that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BadImagePolicy {
    /// Report it (path and reason) and use the next sample instead.
    Skip,
    /// Stop the run with the error.
    Fail,
}

/// Why a dataset or one of its samples could not be read.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unreadable image: {reason}")]
    BadImage { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    BadFormat { path: PathBuf, reason: String },
    #[error("dataset {what} is empty: {hint}")]
    Empty { what: String, hint: String },
    #[error("data source '{data}' cannot be used for {task} (expected {expected})")]
    Unsupported {
        data: String,
        task: String,
        expected: String,
    },
    #[error("sample {index} is out of range (dataset has {len} samples)")]
    OutOfRange { index: usize, len: usize },
}

/// `Ok` when `index` addresses one of `len` samples.
pub fn check_index(index: usize, len: usize) -> Result<(), DataError> {
    if index < len {
        Ok(())
    } else {
        Err(DataError::OutOfRange { index, len })
    }
}

/// A labelled image collection.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True when the dataset has no samples (never the case for an opened dataset).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Names of the classes; labels index into this list.
    fn class_names(&self) -> &[String];

    /// The image and class label of sample `index`.
    fn get(&self, index: usize) -> Result<(Image, i64), DataError>;

    /// One line saying what this is, for logs and the run's metadata.
    fn describe(&self) -> String;
}

/// Which split of a source to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// Where the images come from, as given on the command line or in a config file:
/// `synthetic`, `synthetic-faces`, `synthetic-textures`, `image-folder:PATH` or `idx:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataSource {
    /// The built-in generated object scenes (no files).
    Synthetic,
    /// The built-in generated faces, labelled by identity (no files).
    SyntheticFaces,
    /// The built-in generated textures, labelled by family (no files).
    SyntheticTextures,
    /// ImageNet layout: `PATH/train/<class>/*.{jpg,png}` and `PATH/val/<class>/...`, or a
    /// single directory of class folders (used for training; no validation split).
    ImageFolder(PathBuf),
    /// MNIST/Fashion-MNIST IDX files in `PATH` (`train-images-idx3-ubyte[.gz]`,
    /// `train-labels-idx1-ubyte[.gz]`, `t10k-…` for validation).
    Idx(PathBuf),
    /// PASCAL VOC devkit year directory (detection, segmentation).
    Voc(PathBuf),
    /// COCO root with `annotations/instances_*.json` (detection, segmentation).
    Coco(PathBuf),
    /// Cityscapes root with `leftImg8bit/` and `gtFine/` (segmentation).
    Cityscapes(PathBuf),
    /// CelebA root with the aligned landmark list (landmarks).
    CelebA(PathBuf),
    /// 300-W style folders of images with `.pts` files (landmarks).
    Pts(PathBuf),
}

/// The `kind:` prefixes of the sources that read files.
const FILE_SOURCES: [&str; 7] = [
    "image-folder",
    "idx",
    "voc",
    "coco",
    "cityscapes",
    "celeba",
    "pts",
];

impl FromStr for DataSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "synthetic" => return Ok(DataSource::Synthetic),
            "synthetic-faces" => return Ok(DataSource::SyntheticFaces),
            "synthetic-textures" => return Ok(DataSource::SyntheticTextures),
            _ => {}
        }
        match s.split_once(':') {
            Some((kind, path)) if !path.is_empty() && FILE_SOURCES.contains(&kind) => {
                let path = PathBuf::from(path);
                Ok(match kind {
                    "image-folder" => DataSource::ImageFolder(path),
                    "idx" => DataSource::Idx(path),
                    "voc" => DataSource::Voc(path),
                    "coco" => DataSource::Coco(path),
                    "cityscapes" => DataSource::Cityscapes(path),
                    "celeba" => DataSource::CelebA(path),
                    _ => DataSource::Pts(path),
                })
            }
            _ => Err(format!(
                "unknown data source '{s}' (expected 'synthetic', 'synthetic-faces', 'synthetic-textures', {})",
                FILE_SOURCES
                    .iter()
                    .map(|kind| format!("'{kind}:PATH'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl TryFrom<String> for DataSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DataSource> for String {
    fn from(source: DataSource) -> String {
        source.to_string()
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Synthetic => f.write_str("synthetic"),
            DataSource::SyntheticFaces => f.write_str("synthetic-faces"),
            DataSource::SyntheticTextures => f.write_str("synthetic-textures"),
            DataSource::ImageFolder(path) => write!(f, "image-folder:{}", path.display()),
            DataSource::Idx(path) => write!(f, "idx:{}", path.display()),
            DataSource::Voc(path) => write!(f, "voc:{}", path.display()),
            DataSource::Coco(path) => write!(f, "coco:{}", path.display()),
            DataSource::Cityscapes(path) => write!(f, "cityscapes:{}", path.display()),
            DataSource::CelebA(path) => write!(f, "celeba:{}", path.display()),
            DataSource::Pts(path) => write!(f, "pts:{}", path.display()),
        }
    }
}

/// Options of the built-in dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticOptions {
    /// Images in the training split.
    pub train_size: usize,
    /// Images in the validation split.
    pub val_size: usize,
    /// Seed of the generator (the splits use disjoint streams).
    pub seed: u64,
    /// Number of identities of `synthetic-faces`.
    pub identities: usize,
}

/// Opens a split. `Ok(None)` means the source has no such split (an ImageFolder without
/// `val/`), which callers treat as "no validation".
///
/// Generated datasets are drawn at `image_size` pixels; files keep their own size.
pub fn open(
    source: &DataSource,
    split: Split,
    synthetic: SyntheticOptions,
    image_size: usize,
) -> Result<Option<Arc<dyn Dataset>>, DataError> {
    Ok(match source {
        DataSource::Synthetic | DataSource::SyntheticFaces | DataSource::SyntheticTextures => {
            let (len, stream) = match split {
                Split::Train => (synthetic.train_size, synthetic::Stream::Train),
                Split::Val => (synthetic.val_size, synthetic::Stream::Val),
            };
            if len == 0 {
                return Ok(None);
            }
            let (seed, size) = (synthetic.seed, image_size);
            if *source == DataSource::Synthetic {
                Some(Arc::new(synthetic::SyntheticObjects::new(
                    seed, stream, len, size,
                )))
            } else if *source == DataSource::SyntheticTextures {
                Some(Arc::new(synthetic::SyntheticTextures::new(
                    seed, stream, len, size,
                )))
            } else {
                Some(Arc::new(synthetic::SyntheticFaces::new(
                    seed,
                    stream,
                    len,
                    size,
                    synthetic.identities,
                )))
            }
        }
        DataSource::ImageFolder(root) => {
            image_folder::ImageFolder::open_split(root, split)?.map(|d| Arc::new(d) as _)
        }
        DataSource::Idx(dir) => Some(Arc::new(idx::IdxDataset::open(dir, split)?)),
        other => {
            return Err(unsupported(
                other,
                "classification",
                "synthetic, synthetic-faces, synthetic-textures, image-folder or idx",
            ));
        }
    })
}

fn unsupported(source: &DataSource, task: &str, expected: &str) -> DataError {
    DataError::Unsupported {
        data: source.to_string(),
        task: task.to_string(),
        expected: expected.to_string(),
    }
}

/// Opens a detection split: the built-in scenes, VOC or COCO.
pub fn open_detection(
    source: &DataSource,
    split: Split,
    synthetic: SyntheticOptions,
    image_size: usize,
) -> Result<Arc<dyn TaskDataset<DetectionSample>>, DataError> {
    Ok(match source {
        DataSource::Synthetic => Arc::new(synthetic_objects(split, synthetic, image_size)?),
        DataSource::Voc(root) => Arc::new(voc::VocDetection::open(root, split)?),
        DataSource::Coco(root) => Arc::new(coco::Coco::open(root, split)?),
        other => return Err(unsupported(other, "detection", "synthetic, voc or coco")),
    })
}

/// Opens a segmentation split: the built-in scenes, VOC, Cityscapes or COCO.
pub fn open_segmentation(
    source: &DataSource,
    split: Split,
    synthetic: SyntheticOptions,
    image_size: usize,
) -> Result<Arc<dyn TaskDataset<SegmentationSample>>, DataError> {
    Ok(match source {
        DataSource::Synthetic => Arc::new(synthetic_objects(split, synthetic, image_size)?),
        DataSource::Voc(root) => Arc::new(voc::VocSegmentation::open(root, split)?),
        DataSource::Cityscapes(root) => Arc::new(cityscapes::Cityscapes::open(root, split)?),
        DataSource::Coco(root) => Arc::new(coco::Coco::open(root, split)?),
        other => {
            return Err(unsupported(
                other,
                "segmentation",
                "synthetic, voc, cityscapes or coco",
            ));
        }
    })
}

/// Opens a landmark split: the built-in faces, CelebA/MAFL or 300-W `.pts` folders.
pub fn open_landmarks(
    source: &DataSource,
    split: Split,
    synthetic: SyntheticOptions,
    image_size: usize,
) -> Result<Arc<dyn TaskDataset<LandmarkSample>>, DataError> {
    Ok(match source {
        DataSource::SyntheticFaces => {
            let (len, stream) = synthetic_split(split, synthetic)?;
            Arc::new(synthetic::SyntheticFaces::new(
                synthetic.seed,
                stream,
                len,
                image_size,
                synthetic.identities,
            ))
        }
        DataSource::CelebA(root) => Arc::new(celeba::CelebA::open(root, split)?),
        DataSource::Pts(root) => Arc::new(pts::PtsFolder::open(root, split)?),
        other => {
            return Err(unsupported(
                other,
                "landmarks",
                "synthetic-faces, celeba or pts",
            ));
        }
    })
}

fn synthetic_split(
    split: Split,
    synthetic: SyntheticOptions,
) -> Result<(usize, synthetic::Stream), DataError> {
    let (len, stream) = match split {
        Split::Train => (synthetic.train_size, synthetic::Stream::Train),
        Split::Val => (synthetic.val_size, synthetic::Stream::Val),
    };
    if len == 0 {
        return Err(DataError::Empty {
            what: format!("the built-in {stream:?} split"),
            hint: "its size is 0".into(),
        });
    }
    Ok((len, stream))
}

fn synthetic_objects(
    split: Split,
    synthetic: SyntheticOptions,
    image_size: usize,
) -> Result<synthetic::SyntheticObjects, DataError> {
    let (len, stream) = synthetic_split(split, synthetic)?;
    Ok(synthetic::SyntheticObjects::new(
        synthetic.seed,
        stream,
        len,
        image_size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_source_round_trips_through_text() {
        for text in [
            "synthetic",
            "synthetic-faces",
            "synthetic-textures",
            "image-folder:/data/imagenet",
            "idx:/usr/share/x",
            "voc:/data/VOC2007",
            "coco:c",
            "cityscapes:cs",
            "celeba:/d/celeba",
            "pts:300w",
        ] {
            let source: DataSource = text.parse().unwrap();
            assert_eq!(source.to_string(), text);
        }
        let err = "imagenet".parse::<DataSource>().unwrap_err();
        assert!(
            err.contains("'image-folder:PATH', 'idx:PATH', 'voc:PATH'"),
            "{err}"
        );
        assert!("idx:".parse::<DataSource>().is_err());
    }
}
