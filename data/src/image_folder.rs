//! ImageFolder: the ImageNet directory layout, one sub-directory per class.
//!
//! ```text
//! ROOT/train/n01440764/xxx.JPEG      ROOT/val/n01440764/yyy.JPEG
//! ```
//! A root without `train/` is itself the list of class folders (training split only). Classes
//! are the sorted folder names, as torchvision's `ImageFolder` does, so label indices agree with
//! PyTorch. Files are decoded lazily, on each access, with size limits.

use std::path::{Path, PathBuf};

use super::image::decode_file;
use super::{DataError, Dataset, Image, Split};

/// File extensions taken as images (case-insensitive).
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "jfif"];

#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, i64)>,
}

impl ImageFolder {
    /// Opens `root/train` or `root/val`; a root without `train/` serves as the training split
    /// itself and has no validation split (`Ok(None)`).
    pub fn open_split(root: &Path, split: Split) -> Result<Option<Self>, DataError> {
        if !root.is_dir() {
            return Err(DataError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            });
        }
        let train = root.join("train");
        let split_dir = match split {
            Split::Train if train.is_dir() => train,
            Split::Train => root.to_path_buf(),
            Split::Val if root.join("val").is_dir() => root.join("val"),
            Split::Val => return Ok(None),
        };
        Self::open(&split_dir).map(Some)
    }

    /// Opens a directory of class folders.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let io = |source| DataError::Io {
            path: root.to_path_buf(),
            source,
        };
        let mut classes: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(root).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_dir() {
                classes.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        classes.sort();
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let dir = root.join(class);
            let mut files = Vec::new();
            collect_images(&dir, &mut files)?;
            files.sort();
            samples.extend(files.into_iter().map(|path| (path, label as i64)));
        }
        if samples.is_empty() {
            return Err(DataError::Empty {
                what: root.display().to_string(),
                hint: "expected one sub-directory per class holding .jpg/.jpeg/.png files".into(),
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes,
            samples,
        })
    }

    /// The file behind sample `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.samples.get(index).map(|(path, _)| path.as_path())
    }
}

/// Image files under `dir`, recursively (torchvision also walks nested folders).
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            collect_images(&path, out)?;
        } else if has_image_extension(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn get(&self, index: usize) -> Result<(Image, i64), DataError> {
        let (path, label) = self.samples.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.samples.len(),
        })?;
        Ok((decode_file(path)?, *label))
    }

    fn describe(&self) -> String {
        format!(
            "image folder {} ({} images, {} classes)",
            self.root.display(),
            self.samples.len(),
            self.classes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, value: u8) {
        image::RgbImage::from_pixel(6, 4, image::Rgb([value, 0, 0]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn reads_classes_in_sorted_order_and_reports_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for class in ["zebra", "ant"] {
            std::fs::create_dir_all(root.join("train").join(class)).unwrap();
        }
        write_png(&root.join("train/ant/a.png"), 10);
        write_png(&root.join("train/zebra/b.PNG"), 200);
        std::fs::write(root.join("train/zebra/broken.jpg"), b"not a jpeg").unwrap();
        std::fs::write(root.join("train/zebra/notes.txt"), b"ignored").unwrap();

        let data = ImageFolder::open_split(root, Split::Train)
            .unwrap()
            .unwrap();
        assert_eq!(
            data.class_names(),
            &["ant".to_string(), "zebra".to_string()]
        );
        assert_eq!(data.len(), 3);
        let (img, label) = data.get(0).unwrap();
        assert_eq!((img.width, img.height, label), (6, 4, 0));
        let err = data.get(2).unwrap_err().to_string();
        assert!(
            err.contains("broken.jpg") && err.contains("unreadable image"),
            "{err}"
        );
        assert!(ImageFolder::open_split(root, Split::Val).unwrap().is_none());
    }

    #[test]
    fn empty_and_missing_directories_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        let err = ImageFolder::open_split(&dir.path().join("nope"), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such directory"), "{err}");
    }
}
