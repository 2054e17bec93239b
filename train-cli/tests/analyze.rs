//! `train analyze invert` on pretraining and fine-tuning runs: the optimisation brings the
//! features of the reconstruction toward the picture's, with either prior, and bad input is a
//! clear error.

mod common;

use std::path::{Path, PathBuf};

use common::{TINY, assert_clean_failure, run, stderr, stdout, train};

fn picture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../serve/assets/samples/scene.png")
}

/// A two-step pretraining of `method` (16 px) in `dir`.
fn pretrained(dir: &Path, method: &str) -> PathBuf {
    let out = dir.join(method);
    let output = run(train()
        .args(["pretrain", "--method", method, "--max-steps", "2"])
        .args(TINY)
        .args(["--synthetic-train-size", "64", "--synthetic-val-size", "32"])
        .arg("--out")
        .arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));
    out
}

/// `(before, after)` of each "feature distance A -> B" the command printed.
fn distances(printed: &str) -> Vec<(f64, f64)> {
    printed
        .lines()
        .filter_map(|line| {
            let rest = line.split("feature distance ").nth(1)?;
            let (before, rest) = rest.split_once(" -> ")?;
            let after = rest.split(';').next()?;
            Some((before.parse().ok()?, after.parse().ok()?))
        })
        .collect()
}

#[test]
fn inversions_approach_the_picture_s_features_for_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let contrastive = pretrained(dir.path(), "exemplar-v2");
    let supervised = pretrained(dir.path(), "supervised");
    let finetuned = dir.path().join("classifier");
    let output = run(train()
        .args(["finetune", "--task", "classification", "--init"])
        .arg(&supervised)
        .args(["--image-size", "16", "--epochs", "1", "--batch-size", "16"])
        .args(["--synthetic-train-size", "32", "--synthetic-val-size", "16"])
        .arg("--out")
        .arg(&finetuned));
    assert!(output.status.success(), "{}", stderr(&output));

    for prior in ["deep-image-prior", "total-variation"] {
        for features in ["spatial", "pooled"] {
            let out = dir.path().join(format!("{prior}-{features}.png"));
            let output = run(train()
                .args(["analyze", "invert", "--steps", "40", "--prior", prior])
                .args(["--features", features, "--image"])
                .arg(picture())
                .arg("--run")
                .arg(&contrastive)
                .arg("--run")
                .arg(&supervised)
                .arg("--run")
                .arg(&finetuned)
                .arg("--out")
                .arg(&out));
            let printed = stdout(&output);
            assert!(output.status.success(), "{}", stderr(&output));
            let found = distances(&printed);
            assert_eq!(found.len(), 3, "{printed}");
            for (before, after) in found {
                assert!(
                    after < 0.8 * before,
                    "{prior}, {features}: {before} -> {after}\n{printed}"
                );
            }
            assert!(printed.contains("(classification model)"), "{printed}");
            // The original and three reconstructions, 16 px enlarged 6× to 96.
            let png = image::open(&out).unwrap();
            assert_eq!(png.width(), 6 + 4 * (96 + 6), "{}", out.display());
        }
    }
}

#[test]
fn bad_runs_images_and_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = pretrained(dir.path(), "moco-v2");
    let invert = |args: &[&str]| {
        let mut command = train();
        command
            .args(["analyze", "invert", "--steps", "2", "--run"])
            .arg(&run_dir);
        command.arg("--out").arg(dir.path().join("x.png"));
        command.args(args);
        run(&mut command)
    };
    let image = picture().to_string_lossy().into_owned();
    let output = invert(&["--image", "/nonexistent/picture.png"]);
    assert_clean_failure(&output, "/nonexistent/picture.png");
    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, b"not a picture at all").unwrap();
    let output = invert(&["--image", &garbage.to_string_lossy()]);
    assert_clean_failure(&output, "garbage.png");
    let output = invert(&["--image", &image, "--run", &dir.path().to_string_lossy()]);
    assert_clean_failure(&output, "neither a pretraining run");
    let output = invert(&["--image", &image, "--steps", "0"]);
    assert_clean_failure(&output, "--steps must be at least 1");
    let output = invert(&["--image", &image, "--lr", "0"]);
    assert_clean_failure(&output, "--lr must be a positive number");
    let output = invert(&["--image", &image, "--prior", "magic"]);
    assert_eq!(output.status.code(), Some(2));
    assert_clean_failure(&output, "invalid value 'magic'");

    // A backbone of another input size cannot share the picture.
    let larger = dir.path().join("larger");
    std::fs::create_dir_all(&larger).unwrap();
    for entry in std::fs::read_dir(&run_dir).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), larger.join(entry.file_name())).unwrap();
        }
    }
    let card = std::fs::read_to_string(larger.join("backbone.json")).unwrap();
    assert!(card.contains("\"image_size\": 16"), "{card}");
    std::fs::write(
        larger.join("backbone.json"),
        card.replace("\"image_size\": 16", "\"image_size\": 32"),
    )
    .unwrap();
    let output = invert(&["--image", &image, "--run", &larger.to_string_lossy()]);
    assert_clean_failure(&output, "compare backbones of one input size");
    assert!(!dir.path().join("x.png").exists(), "nothing is written");
}
