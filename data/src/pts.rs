//! 300-W / menpo landmark files: each image (`.png` or `.jpg`) has a `.pts` file beside it with
//! 68 iBUG points (`version: 1`, `n_points: 68`, then `{`, one `x y` per line, `}`).
//!
//! The transfer protocol uses the five MAFL points, so 68-point annotations are reduced to eye
//! centres (mean of each eye's six points), nose tip (point 31) and mouth corners (49, 55),
//! in image-left-first order like CelebA. Files with 5 points are used as they are.
//! Splits: `ROOT/train/` for training, `ROOT/val/` or `ROOT/test/` for validation.

use std::path::{Path, PathBuf};

use super::annotated::LandmarkFiles;
use super::celeba::CELEBA_POINTS;
use super::{DataError, Split};

pub struct PtsFolder;

fn bad(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::BadFormat {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses a `.pts` file.
pub fn parse_pts(text: &str, path: &Path) -> Result<Vec<[f32; 2]>, DataError> {
    let mut declared = None;
    let mut points = Vec::new();
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = |reason: String| bad(path, format!("line {}: {reason}", i + 1));
        if line.is_empty() || line.starts_with("version") {
            continue;
        }
        if let Some(n) = line.strip_prefix("n_points:") {
            declared = Some(
                n.trim()
                    .parse::<usize>()
                    .map_err(|_| at(format!("bad n_points '{}'", n.trim())))?,
            );
        } else if line == "{" {
            inside = true;
        } else if line == "}" {
            inside = false;
        } else if inside {
            let xy: Vec<f32> = line
                .split_whitespace()
                .map(|v| v.parse::<f32>().ok().filter(|v| v.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| at(format!("'{line}' is not an x y pair")))?;
            match xy.as_slice() {
                [x, y] => points.push([*x, *y]),
                _ => return Err(at(format!("'{line}' is not an x y pair"))),
            }
        } else {
            return Err(at(format!("unexpected '{line}'")));
        }
    }
    match declared {
        Some(n) if n == points.len() => Ok(points),
        Some(n) => Err(bad(
            path,
            format!("declares {n} points but lists {}", points.len()),
        )),
        None => Err(bad(path, "no n_points line")),
    }
}

/// The five MAFL points from 68 iBUG points (or 5 points unchanged).
pub fn to_five_points(points: &[[f32; 2]], path: &Path) -> Result<Vec<[f32; 2]>, DataError> {
    let mean = |range: std::ops::Range<usize>| {
        let n = range.len() as f32;
        let (sx, sy) = points[range]
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p[0], b + p[1]));
        [sx / n, sy / n]
    };
    match points.len() {
        5 => Ok(points.to_vec()),
        68 => Ok(vec![
            mean(36..42),
            mean(42..48),
            points[30],
            points[48],
            points[54],
        ]),
        n => Err(bad(path, format!("{n} points: expected 68 (iBUG) or 5"))),
    }
}

impl PtsFolder {
    /// The split folder's images, each with the five points of the `.pts` file beside it.
    pub fn open(root: &Path, split: Split) -> Result<LandmarkFiles, DataError> {
        let candidates: &[&str] = match split {
            Split::Train => &["train"],
            Split::Val => &["val", "test"],
        };
        let dir = candidates
            .iter()
            .map(|c| root.join(c))
            .find(|d| d.is_dir())
            .ok_or_else(|| DataError::Empty {
                what: root.display().to_string(),
                hint: format!(
                    "expected a {} directory of images with .pts files",
                    candidates.join(" or ")
                ),
            })?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| DataError::Io {
                path: dir.clone(),
                source,
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pts"))
            .collect();
        files.sort();
        let mut samples = Vec::with_capacity(files.len());
        for pts in files {
            let text = std::fs::read_to_string(&pts).map_err(|source| DataError::Io {
                path: pts.clone(),
                source,
            })?;
            let points = to_five_points(&parse_pts(&text, &pts)?, &pts)?;
            let image = ["png", "jpg", "jpeg"]
                .iter()
                .map(|e| pts.with_extension(e))
                .find(|p| p.exists())
                .ok_or_else(|| bad(&pts, "no image (.png/.jpg) beside it"))?;
            samples.push((image, points));
        }
        if samples.is_empty() {
            return Err(DataError::Empty {
                what: dir.display().to_string(),
                hint: "no .pts files".into(),
            });
        }
        Ok(LandmarkFiles {
            what: format!("300-W .pts {}", dir.display()),
            samples,
            point_names: CELEBA_POINTS.iter().map(|s| s.to_string()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_eight_points_reduce_to_the_five_mafl_points() {
        let mut text = String::from("version: 1\nn_points:  68\n{\n");
        for i in 0..68 {
            text.push_str(&format!("{} {}\n", i, 2 * i));
        }
        text.push_str("}\n");
        let points = parse_pts(&text, Path::new("a.pts")).unwrap();
        let five = to_five_points(&points, Path::new("a.pts")).unwrap();
        assert_eq!(
            five,
            vec![
                [38.5, 77.0],
                [44.5, 89.0],
                [30.0, 60.0],
                [48.0, 96.0],
                [54.0, 108.0]
            ]
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let err = parse_pts(
            "version: 1\nn_points: 2\n{\n1 2\n3 four\n}\n",
            Path::new("b.pts"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("b.pts") && err.contains("line 5"), "{err}");
        let err = parse_pts("n_points: 3\n{\n1 2\n}\n", Path::new("b.pts"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 3"), "{err}");
    }
}
