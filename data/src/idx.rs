//! MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST), optionally gzip-compressed.
//!
//! The format: a big-endian header (`0x00 0x00 type ndim`, then `ndim` u32 sizes) followed by
//! the data. Images are `u8` `[n, rows, cols]` (type 0x08, 3 dims), labels `u8` `[n]`.
//! Debian's `dataset-fashion-mnist` package installs the four files of Fashion-MNIST under
//! `/usr/share/datasets/fashion-mnist/`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, Dataset, Image, Split};

/// Fashion-MNIST's class names; other IDX datasets with 10 classes get digit names.
const FASHION_CLASSES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

#[derive(Debug, Clone)]
pub struct IdxDataset {
    images_path: PathBuf,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
}

impl IdxDataset {
    /// Opens `train-*` or `t10k-*` files in `dir` (with or without `.gz`).
    pub fn open(dir: &Path, split: Split) -> Result<Self, DataError> {
        let prefix = match split {
            Split::Train => "train",
            Split::Val => "t10k",
        };
        let images = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        Self::from_files(&images, &labels)
    }

    /// Reads an image file and its label file.
    pub fn from_files(images_path: &Path, labels_path: &Path) -> Result<Self, DataError> {
        let (dims, pixels) = read_idx(images_path)?;
        let bad = |reason: String| DataError::BadFormat {
            path: images_path.to_path_buf(),
            reason,
        };
        let [n, rows, cols] = dims[..] else {
            return Err(bad(format!("expected 3 dimensions, found {}", dims.len())));
        };
        let (label_dims, labels) = read_idx(labels_path)?;
        if label_dims != [n] {
            return Err(DataError::BadFormat {
                path: labels_path.to_path_buf(),
                reason: format!(
                    "expected {n} labels to match the images, header says {label_dims:?}"
                ),
            });
        }
        if n == 0 {
            return Err(DataError::Empty {
                what: images_path.display().to_string(),
                hint: "the IDX file holds no images".into(),
            });
        }
        let num_classes = labels.iter().copied().max().unwrap_or(0) as usize + 1;
        let fashion = images_path.to_string_lossy().contains("fashion");
        let classes = (0..num_classes.max(10))
            .map(|c| match (fashion, FASHION_CLASSES.get(c)) {
                (true, Some(name)) => name.to_string(),
                _ => c.to_string(),
            })
            .collect();
        Ok(Self {
            images_path: images_path.to_path_buf(),
            rows,
            cols,
            pixels,
            labels,
            classes,
        })
    }
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    for candidate in [dir.join(stem), dir.join(format!("{stem}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(DataError::Io {
        path: dir.join(stem),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "IDX file not found (with or without .gz); Fashion-MNIST: apt-get install dataset-fashion-mnist",
        ),
    })
}

/// Reads an unsigned-byte IDX file: its dimensions and data.
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| DataError::BadFormat {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("corrupt gzip stream: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "unsupported IDX element type 0x{:02x} (only unsigned bytes, 0x08)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let at = 4 + 4 * i;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match expected {
        Some(count) if bytes.len() - header == count => {}
        Some(count) => {
            return Err(bad(format!(
                "header promises {count} bytes of data for dimensions {dims:?}, file has {}",
                bytes.len() - header
            )));
        }
        None => return Err(bad(format!("dimensions {dims:?} overflow"))),
    }
    Ok((dims, bytes[header..].to_vec()))
}

impl Dataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn get(&self, index: usize) -> Result<(Image, i64), DataError> {
        let label = *self.labels.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.labels.len(),
        })?;
        let plane = self.rows * self.cols;
        let gray: Vec<f32> = self.pixels[index * plane..(index + 1) * plane]
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect();
        Ok((Image::from_gray(self.cols, self.rows, &gray), label as i64))
    }

    fn describe(&self) -> String {
        format!(
            "IDX {} ({} images of {}×{}, {} classes)",
            self.images_path.display(),
            self.labels.len(),
            self.cols,
            self.rows,
            self.classes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_plain_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 2 * 3).map(|v| v * 20).collect();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            idx(&[2, 2, 3], &pixels),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(&[2], &[3, 1])).unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte.gz"),
            gz.finish().unwrap(),
        )
        .unwrap();

        let data = IdxDataset::open(dir.path(), Split::Train).unwrap();
        assert_eq!(data.len(), 2);
        let (img, label) = data.get(1).unwrap();
        assert_eq!((img.width, img.height, label), (3, 2, 1));
        assert_eq!(img.pixel(0, 0), [120.0 / 255.0; 3]);
        assert!(data.get(2).is_err());
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("train-images-idx3-ubyte");
        let labels = dir.path().join("train-labels-idx1-ubyte");
        std::fs::write(&images, idx(&[2, 2, 2], &[0; 7])).unwrap();
        std::fs::write(&labels, idx(&[2], &[0, 1])).unwrap();
        let err = IdxDataset::open(dir.path(), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("promises 8 bytes"), "{err}");

        std::fs::write(&images, idx(&[2, 2, 2], &[0; 8])).unwrap();
        std::fs::write(&labels, idx(&[3], &[0, 1, 2])).unwrap();
        let err = IdxDataset::open(dir.path(), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 2 labels"), "{err}");

        std::fs::write(&images, b"\x1f\x8bgarbage").unwrap();
        let err = IdxDataset::open(dir.path(), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("corrupt gzip"), "{err}");

        let err = IdxDataset::open(&dir.path().join("missing"), Split::Val)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t10k-images-idx3-ubyte"), "{err}");
    }
}
