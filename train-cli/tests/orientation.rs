//! `train` sees pictures as a person does: a COCO folder of phone-style JPEGs, each stored turned
//! with an EXIF orientation tag, evaluates exactly as the same pictures stored upright. The boxes
//! are in the displayed frame, as annotation tools draw them.
//!
//! The pictures are grey and constant on 8×8 blocks, which JPEG keeps exactly under every turn
//! (`exemplar_inference::orientation::camera_jpeg`), so the two evaluations must agree to the
//! last digit; the same turned pixels without their tag must not.

mod common;

use std::path::{Path, PathBuf};

use exemplar_inference::orientation::{self, camera_jpeg, untagged_jpeg};
use image::metadata::Orientation;
use image::{GrayImage, Luma};

use common::{run, stderr, train};

/// Picture `i` as displayed (48×64, one bright block object on shaded ground, all in 8×8
/// blocks) and its object's box `[x, y, w, h]`.
fn picture(i: u32) -> (GrayImage, [u32; 4]) {
    let (bx, by, bw, bh) = (i % 3, (i / 3) % 4, 2 + i % 2, 2 + (i / 2) % 2);
    let image = GrayImage::from_fn(48, 64, |x, y| {
        let (cx, cy) = (x / 8, y / 8);
        if (bx..bx + bw).contains(&cx) && (by..by + bh).contains(&cy) {
            Luma([(230 - i * 3) as u8])
        } else {
            Luma([(30 + cx * 11 + cy * 7 + i * 3) as u8])
        }
    });
    (image, [bx * 8, by * 8, bw * 8, bh * 8])
}

/// The EXIF orientation picture `i` is stored with: all eight in turn.
fn orientation_of(i: u32) -> Orientation {
    orientation::all()
        .nth(i as usize % 8)
        .expect("eight orientations")
}

/// Writes a COCO dataset of pictures 0–7 (train) and 8–15 (val) under `root`, each file made
/// by `file`.
fn write_coco(root: &Path, file: impl Fn(u32, &GrayImage) -> Vec<u8>) -> String {
    std::fs::create_dir_all(root.join("annotations")).unwrap();
    for (split, ids) in [("train", 0..8), ("val", 8..16)] {
        std::fs::create_dir_all(root.join(split)).unwrap();
        let (mut images, mut annotations) = (Vec::new(), Vec::new());
        for i in ids {
            let (shown, bbox) = picture(i);
            let name = format!("{i}.jpg");
            std::fs::write(root.join(split).join(&name), file(i, &shown)).unwrap();
            images.push(serde_json::json!({"id": i, "file_name": name, "width": 48, "height": 64}));
            annotations.push(serde_json::json!({
                "id": 100 + i, "image_id": i, "category_id": 1, "bbox": bbox,
                "area": bbox[2] * bbox[3], "iscrowd": 0
            }));
        }
        let instances = serde_json::json!({
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "block"}],
        });
        let path = root.join(format!("annotations/instances_{split}.json"));
        std::fs::write(path, instances.to_string()).unwrap();
    }
    format!("coco:{}", root.display())
}

/// `train eval detection` of `run_dir` on `data`: its result.
fn evaluate(run_dir: &Path, data: &str) -> serde_json::Value {
    let output = run(train()
        .args(["eval", "detection", "--data", data, "--run"])
        .arg(run_dir));
    assert!(output.status.success(), "{data}: {}", stderr(&output));
    let path: PathBuf = run_dir.join("eval/detection.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["result"].clone()
}

#[test]
fn exif_oriented_jpegs_evaluate_as_the_upright_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let upright = write_coco(&dir.path().join("upright"), |_, shown| {
        camera_jpeg(shown, Orientation::NoTransforms).unwrap()
    });
    let tagged = write_coco(&dir.path().join("tagged"), |i, shown| {
        camera_jpeg(shown, orientation_of(i)).unwrap()
    });
    // What a loader that ignored the tag would read: the turned pixels alone.
    let untagged = write_coco(&dir.path().join("untagged"), |i, shown| {
        untagged_jpeg(shown, orientation_of(i)).unwrap()
    });

    let detector = dir.path().join("detector");
    let output = run(train()
        .args(["finetune", "--task", "detection", "--data", &upright])
        .args(["--arch", "resnet18", "--width", "0.0625", "--stem", "small"])
        .args([
            "--image-size",
            "32",
            "--head-channels",
            "8",
            "--batch-size",
            "4",
        ])
        .args([
            "--epochs",
            "200",
            "--lr",
            "0.05",
            "--log-every",
            "100",
            "--out",
        ])
        .arg(&detector));
    assert!(output.status.success(), "{}", stderr(&output));

    // 400 steps (about 4 s) teach the tiny detector to find the blocks (54.6% VOC07 mAP50 on
    // the validation pictures when written), so the comparison is between real detections.
    let expected = evaluate(&detector, &upright);
    let map50 = expected["voc07_map50_11point"].as_f64().unwrap();
    assert!(
        map50 >= 0.25,
        "the detector finds too little to compare: {expected}"
    );
    assert_eq!(evaluate(&detector, &tagged), expected);
    assert_ne!(
        evaluate(&detector, &untagged),
        expected,
        "the turned pixels without their tag should score differently"
    );
}
