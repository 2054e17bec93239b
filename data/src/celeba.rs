//! CelebA / MAFL facial landmarks: `list_landmarks_align_celeba.txt` (five points per aligned
//! image: left eye, right eye, nose, left and right mouth corner) with images in
//! `img_align_celeba/`.
//!
//! Splits follow MAFL when its lists are present (`MAFL/training.txt`, `MAFL/testing.txt`, one
//! file name per line), otherwise CelebA's `list_eval_partition.txt` (0 = train, 2 = test).
//! Files are looked up in `ROOT/` and in the archive's `ROOT/Anno/` and `ROOT/Eval/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::annotated::LandmarkFiles;
use super::{DataError, Split};

/// Point names in file order (MAFL's order).
pub const CELEBA_POINTS: [&str; 5] = ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"];

/// An image name with its points.
pub type NamedPoints = (String, Vec<[f32; 2]>);

pub struct CelebA;

fn find(root: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| root.join(n)).find(|p| p.exists())
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, line: usize, reason: impl std::fmt::Display) -> DataError {
    DataError::BadFormat {
        path: path.to_path_buf(),
        reason: format!("line {line}: {reason}"),
    }
}

/// Parses the landmark list: a count line, a header line, then `name x1 y1 … x5 y5`.
pub fn parse_landmarks(text: &str, path: &Path) -> Result<Vec<NamedPoints>, DataError> {
    let mut lines = text.lines().enumerate();
    let declared: usize = match lines.next() {
        Some((_, l)) => l
            .trim()
            .parse()
            .map_err(|_| bad(path, 1, "expected the image count"))?,
        None => return Err(bad(path, 1, "empty file")),
    };
    lines.next(); // header: lefteye_x lefteye_y …
    let mut out = Vec::with_capacity(declared);
    for (i, line) in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 11 {
            return Err(bad(
                path,
                i + 1,
                format!(
                    "expected a name and 10 numbers, found {} fields",
                    fields.len()
                ),
            ));
        }
        let mut values = [0f32; 10];
        for (v, f) in values.iter_mut().zip(&fields[1..]) {
            *v = f
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| bad(path, i + 1, format!("'{f}' is not a number")))?;
        }
        let points = values.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        out.push((fields[0].to_string(), points));
    }
    if out.len() != declared {
        return Err(bad(
            path,
            1,
            format!("declares {declared} images but lists {}", out.len()),
        ));
    }
    Ok(out)
}

impl CelebA {
    /// The split's images (`img_align_celeba/`) with their five aligned landmarks.
    pub fn open(root: &Path, split: Split) -> Result<LandmarkFiles, DataError> {
        let list_name = "list_landmarks_align_celeba.txt";
        let list = find(root, &[list_name, &format!("Anno/{list_name}")]).ok_or_else(|| {
            DataError::Empty {
                what: root.display().to_string(),
                hint: format!("expected {list_name} (or Anno/{list_name})"),
            }
        })?;
        let all = parse_landmarks(&read(&list)?, &list)?;
        let wanted = split_names(root, split)?;
        let by_name: HashMap<&str, usize> = all
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect();
        let mut samples = Vec::with_capacity(wanted.1.len());
        for name in &wanted.1 {
            let &i = by_name
                .get(name.as_str())
                .ok_or_else(|| DataError::BadFormat {
                    path: wanted.0.clone(),
                    reason: format!("{name} has no landmarks in {}", list.display()),
                })?;
            samples.push(all[i].clone());
        }
        if samples.is_empty() {
            return Err(DataError::Empty {
                what: wanted.0.display().to_string(),
                hint: "the split lists no images".into(),
            });
        }
        let images = root.join("img_align_celeba");
        Ok(LandmarkFiles {
            what: format!("CelebA landmarks {}", wanted.0.display()),
            samples: samples
                .into_iter()
                .map(|(name, points)| (images.join(name), points))
                .collect(),
            point_names: CELEBA_POINTS.iter().map(|s| s.to_string()).collect(),
        })
    }
}

/// The split file used and the image names it lists.
fn split_names(root: &Path, split: Split) -> Result<(PathBuf, Vec<String>), DataError> {
    let mafl = match split {
        Split::Train => "training.txt",
        Split::Val => "testing.txt",
    };
    if let Some(path) = find(root, &[&format!("MAFL/{mafl}"), mafl]) {
        let names = read(&path)?
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        return Ok((path, names));
    }
    let partition = "list_eval_partition.txt";
    let path =
        find(root, &[partition, &format!("Eval/{partition}")]).ok_or_else(|| DataError::Empty {
            what: root.display().to_string(),
            hint: format!("expected MAFL/{mafl} or {partition} for the split"),
        })?;
    let wanted = match split {
        Split::Train => "0",
        Split::Val => "2",
    };
    let text = read(&path)?;
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            [] => {}
            [name, part] => {
                if *part == wanted {
                    names.push(name.to_string());
                }
            }
            _ => return Err(bad(&path, i + 1, "expected '<image> <partition>'")),
        }
    }
    Ok((path, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmark_list_parses_and_errors_name_the_line() {
        let text = "2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n\
                    000001.jpg 69 109 106 113 77 142 73 152 108 154\n\
                    000002.jpg 69 110 107 112 81 135 70 151 108 153\n";
        let parsed = parse_landmarks(text, Path::new("l.txt")).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].1[2], [77.0, 142.0]);
        let broken = text.replace("81 135", "81 x");
        let err = parse_landmarks(&broken, Path::new("l.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("l.txt") && err.contains("line 4") && err.contains("'x'"),
            "{err}"
        );
        let short = text.replace("2\n", "3\n");
        let err = parse_landmarks(&short, Path::new("l.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 3"), "{err}");
    }
}
