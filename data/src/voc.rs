//! PASCAL VOC (2007/2012 devkit layout): detection from `Annotations/*.xml`, semantic
//! segmentation from `SegmentationClass/*.png`, images in `JPEGImages/`, splits listed in
//! `ImageSets/{Main,Segmentation}/<split>.txt`.
//!
//! Splits: training reads `trainval.txt` when present, else `train.txt`; validation reads
//! `test.txt` when present (VOC2007's test set, the paper's detection benchmark), else
//! `val.txt`.

use std::path::{Path, PathBuf};

use super::annotated::{DetectionSample, IGNORE_LABEL, Object, SegmentationSample, TaskDataset};
use super::image::decode_file;
use super::{DataError, Split, check_index};

/// The 20 VOC object classes, in the devkit's (alphabetical) order.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

fn bad(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::BadFormat {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the ids of a split file, one per line (extra columns, as in per-class lists, ignored).
fn read_split(dir: &Path, split: Split) -> Result<(PathBuf, Vec<String>), DataError> {
    let candidates: &[&str] = match split {
        Split::Train => &["trainval.txt", "train.txt"],
        Split::Val => &["test.txt", "val.txt"],
    };
    let path = candidates
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
        .ok_or_else(|| DataError::Empty {
            what: dir.display().to_string(),
            hint: format!("expected one of {}", candidates.join(", ")),
        })?;
    let text = std::fs::read_to_string(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Err(DataError::Empty {
            what: path.display().to_string(),
            hint: "the split file lists no images".into(),
        });
    }
    Ok((path, ids))
}

/// VOC detection: boxes of the 20 classes, `difficult` objects kept but not scored.
pub struct VocDetection {
    root: PathBuf,
    split_file: PathBuf,
    ids: Vec<String>,
    annotations: Vec<Vec<Object>>,
    class_names: Vec<String>,
}

impl VocDetection {
    /// Opens `root` (the directory holding `Annotations/`, e.g. `VOCdevkit/VOC2007`) and parses
    /// every annotation of the split up front, so format errors surface before training.
    pub fn open(root: &Path, split: Split) -> Result<Self, DataError> {
        let (split_file, ids) = read_split(&root.join("ImageSets/Main"), split)?;
        let mut annotations = Vec::with_capacity(ids.len());
        for id in &ids {
            let path = root.join("Annotations").join(format!("{id}.xml"));
            let text = std::fs::read_to_string(&path).map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?;
            annotations.push(parse_annotation(&text, &path)?);
        }
        Ok(Self {
            root: root.to_path_buf(),
            split_file,
            ids,
            annotations,
            class_names: VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
        })
    }
}

/// Parses one VOC annotation file. Coordinates are 1-based inclusive pixel indices, converted
/// to pixel edges (`x0 = xmin - 1`, `x1 = xmax`); boxes reaching outside the declared image
/// size are clipped with a warning, empty boxes are errors.
pub fn parse_annotation(text: &str, path: &Path) -> Result<Vec<Object>, DataError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| bad(path, e.to_string()))?;
    let root = doc.root_element();
    let text_of = |node: roxmltree::Node, name: &str| -> Option<String> {
        child(node, name)
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
    };
    let size = child(root, "size").ok_or_else(|| bad(path, "no <size> element"))?;
    let dim = |name: &str| -> Result<f32, DataError> {
        text_of(size, name)
            .and_then(|t| t.parse::<f32>().ok())
            .filter(|v| *v > 0.0)
            .ok_or_else(|| {
                bad(
                    path,
                    format!("<size><{name}> missing or not a positive number"),
                )
            })
    };
    let (width, height) = (dim("width")?, dim("height")?);
    let mut objects = Vec::new();
    for (index, object) in root
        .children()
        .filter(|c| c.has_tag_name("object"))
        .enumerate()
    {
        let at = |reason: String| bad(path, format!("object {} ({reason})", index + 1));
        let name = text_of(object, "name").ok_or_else(|| at("no <name>".into()))?;
        let class = VOC_CLASSES
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| at(format!("unknown class '{name}'")))?;
        let ignore = text_of(object, "difficult").is_some_and(|d| d == "1");
        let bndbox = child(object, "bndbox").ok_or_else(|| at("no <bndbox>".into()))?;
        let mut coords = [0.0f32; 4];
        for (k, name) in ["xmin", "ymin", "xmax", "ymax"].iter().enumerate() {
            coords[k] = text_of(bndbox, name)
                .and_then(|t| t.parse::<f32>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| at(format!("<{name}> missing or not a number")))?;
        }
        let raw = [coords[0] - 1.0, coords[1] - 1.0, coords[2], coords[3]];
        let bbox = clip_box(raw, width, height, path, &format!("object {}", index + 1))?;
        objects.push(Object {
            bbox,
            class,
            ignore,
        });
    }
    Ok(objects)
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|c| c.has_tag_name(name))
}

/// Clips a box to the image, warning when it had to; a box with no area left is an error.
pub fn clip_box(
    b: [f32; 4],
    width: f32,
    height: f32,
    path: &Path,
    what: &str,
) -> Result<[f32; 4], DataError> {
    let clipped = [
        b[0].clamp(0.0, width),
        b[1].clamp(0.0, height),
        b[2].clamp(0.0, width),
        b[3].clamp(0.0, height),
    ];
    if clipped[2] <= clipped[0] || clipped[3] <= clipped[1] {
        return Err(bad(
            path,
            format!("{what}: box {b:?} is empty inside the {width}×{height} image"),
        ));
    }
    if clipped != b {
        eprintln!(
            "warning: {}: {what}: box {b:?} reaches outside the {width}×{height} image, clipped",
            path.display()
        );
    }
    Ok(clipped)
}

impl TaskDataset<DetectionSample> for VocDetection {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn get(&self, index: usize) -> Result<DetectionSample, DataError> {
        check_index(index, self.ids.len())?;
        let path = self
            .root
            .join("JPEGImages")
            .join(format!("{}.jpg", self.ids[index]));
        Ok(DetectionSample {
            image: decode_file(&path)?,
            objects: self.annotations[index].clone(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "VOC detection {} ({} images)",
            self.split_file.display(),
            self.ids.len()
        )
    }
}

/// VOC semantic segmentation: 21 classes (background + 20), border pixels 255 (ignored).
pub struct VocSegmentation {
    root: PathBuf,
    split_file: PathBuf,
    ids: Vec<String>,
    class_names: Vec<String>,
}

impl VocSegmentation {
    pub fn open(root: &Path, split: Split) -> Result<Self, DataError> {
        let (split_file, ids) = read_split(&root.join("ImageSets/Segmentation"), split)?;
        Ok(Self {
            root: root.to_path_buf(),
            split_file,
            ids,
            class_names: std::iter::once("background")
                .chain(VOC_CLASSES)
                .map(str::to_string)
                .collect(),
        })
    }
}

impl TaskDataset<SegmentationSample> for VocSegmentation {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn get(&self, index: usize) -> Result<SegmentationSample, DataError> {
        check_index(index, self.ids.len())?;
        let id = &self.ids[index];
        let image = decode_file(&self.root.join("JPEGImages").join(format!("{id}.jpg")))?;
        let mask_path = self
            .root
            .join("SegmentationClass")
            .join(format!("{id}.png"));
        let (mask, w, h) = read_index_png(&mask_path)?;
        check_mask_size(&mask_path, [w, h], [image.width, image.height])?;
        if let Some(bad_label) = mask
            .iter()
            .find(|&&v| v != IGNORE_LABEL && v as usize >= self.class_names.len())
        {
            return Err(bad(
                &mask_path,
                format!("label {bad_label} is not a VOC class"),
            ));
        }
        Ok(SegmentationSample { image, mask })
    }

    fn describe(&self) -> String {
        format!(
            "VOC segmentation {} ({} images)",
            self.split_file.display(),
            self.ids.len()
        )
    }
}

/// Mask and image must agree in size: a mismatch means the wrong file, never something to
/// silently resample.
pub fn check_mask_size(path: &Path, mask: [usize; 2], image: [usize; 2]) -> Result<(), DataError> {
    if mask != image {
        return Err(bad(
            path,
            format!(
                "mask is {}×{} but its image is {}×{}",
                mask[0], mask[1], image[0], image[1]
            ),
        ));
    }
    Ok(())
}

/// Reads an 8-bit PNG's raw sample values: palette indices for VOC's colour-mapped masks
/// (the `image` crate would expand them to RGB), grey levels for Cityscapes' label ids.
pub fn read_index_png(path: &Path) -> Result<(Vec<u8>, usize, usize), DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| bad(path, e.to_string()))?;
    let info = reader.info();
    let (w, h) = (info.width as usize, info.height as usize);
    let kind = (info.color_type, info.bit_depth);
    if kind.1 != png::BitDepth::Eight
        || !matches!(kind.0, png::ColorType::Indexed | png::ColorType::Grayscale)
    {
        return Err(bad(
            path,
            format!("expected an 8-bit palette or greyscale label PNG, found {kind:?}"),
        ));
    }
    if w as u32 > super::image::MAX_DIMENSION || h as u32 > super::image::MAX_DIMENSION {
        return Err(bad(path, format!("{w}×{h} is larger than allowed")));
    }
    let mut buffer = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| bad(path, "too large"))?
    ];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|e| bad(path, e.to_string()))?;
    buffer.truncate(frame.buffer_size());
    if buffer.len() != w * h {
        return Err(bad(path, "unexpected PNG row layout"));
    }
    Ok((buffer, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_of_another_size_than_its_image_is_an_error() {
        assert!(check_mask_size(Path::new("m.png"), [4, 3], [4, 3]).is_ok());
        let err = check_mask_size(Path::new("m.png"), [4, 3], [8, 6])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "m.png: mask is 4×3 but its image is 8×6");
    }

    #[test]
    fn annotation_boxes_become_pixel_edges_and_errors_name_the_object() {
        let xml = r#"<annotation><size><width>100</width><height>50</height><depth>3</depth></size>
            <object><name>dog</name><difficult>0</difficult>
              <bndbox><xmin>11</xmin><ymin>6</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
            <object><name>person</name><difficult>1</difficult>
              <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>120</xmax><ymax>50</ymax></bndbox></object>
            </annotation>"#;
        let objects = parse_annotation(xml, Path::new("a.xml")).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].bbox, [10.0, 5.0, 40.0, 30.0]);
        assert_eq!(objects[0].class, 11);
        assert!(!objects[0].ignore);
        // Clipped to the image, flagged difficult.
        assert_eq!(objects[1].bbox, [0.0, 0.0, 100.0, 50.0]);
        assert!(objects[1].ignore);

        let unknown = xml.replace("<name>dog</name>", "<name>unicorn</name>");
        let err = parse_annotation(&unknown, Path::new("a.xml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.xml") && err.contains("object 1") && err.contains("unicorn"),
            "{err}"
        );
        let broken = xml.replace("<xmax>40</xmax>", "<xmax>forty</xmax>");
        let err = parse_annotation(&broken, Path::new("a.xml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("object 1") && err.contains("xmax"), "{err}");
        let err = parse_annotation("<annotation>", Path::new("a.xml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.xml:"), "{err}");
    }
}
