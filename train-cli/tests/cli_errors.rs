//! Bad input gives a clear message and a non-zero exit, never a panic.

mod common;

use common::{TINY, assert_clean_failure, run, stderr, train};

#[test]
fn bad_flags_are_usage_errors() {
    let output = run(train().args(["pretrain", "--method", "simclr"]));
    assert_eq!(output.status.code(), Some(2));
    assert_clean_failure(&output, "invalid value 'simclr'");
    let output = run(train().args(["pretrain", "--batch-size", "many"]));
    assert_clean_failure(&output, "invalid value 'many'");
    let output = run(train().args(["pretrain", "--data", "imagenet"]));
    assert_clean_failure(&output, "image-folder:PATH");
    let output = run(train().args(["pretrain", "--resume"]));
    assert_clean_failure(&output, "--out");
    let output = run(train().args(["pretrain", "--device", "tpu"]));
    assert_clean_failure(&output, "unknown device 'tpu'");
}

#[test]
fn invalid_values_and_config_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = run(train()
        .args(["pretrain", "--batch-size", "1", "--out"])
        .arg(&out));
    assert_clean_failure(&output, "batch_size must be at least 2");

    let config = dir.path().join("c.toml");
    std::fs::write(&config, "epochs = \"ten\"\n").unwrap();
    let output = run(train().args(["pretrain", "--config"]).arg(&config));
    assert_clean_failure(&output, "c.toml");
    let output = run(train()
        .args(["pretrain", "--config"])
        .arg(dir.path().join("absent.toml")));
    assert_clean_failure(&output, "absent.toml");
}

#[test]
fn missing_and_empty_datasets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let missing = dir.path().join("nowhere");
    let output = run(train()
        .args(["pretrain", "--data"])
        .arg(format!("image-folder:{}", missing.display()))
        .arg("--out")
        .arg(&out));
    assert_clean_failure(&output, "no such directory");

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("cat")).unwrap();
    let output = run(train()
        .args(["pretrain", "--data"])
        .arg(format!("image-folder:{}", empty.display()))
        .arg("--out")
        .arg(&out));
    assert_clean_failure(&output, "is empty");

    let output = run(train()
        .args(["pretrain", "--data"])
        .arg(format!("idx:{}", missing.display()))
        .arg("--out")
        .arg(&out));
    assert_clean_failure(&output, "train-images-idx3-ubyte");
}

/// A small ImageFolder with one corrupt and one truncated file among good ones.
fn folder_with_corrupt_images(root: &std::path::Path) {
    for (class, colour) in [("red", [200u8, 30, 30]), ("blue", [30, 30, 200])] {
        let dir = root.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..10 {
            let img = image::RgbImage::from_fn(20, 20, |x, y| {
                let shade = ((x + y + i) % 7) as u8 * 5;
                image::Rgb([colour[0] - shade, colour[1] + shade, colour[2] - shade])
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(
        root.join("train/red/corrupt.png"),
        b"\x89PNG\r\n\x1a\nnonsense",
    )
    .unwrap();
    let good = std::fs::read(root.join("train/blue/0.png")).unwrap();
    std::fs::write(
        root.join("train/blue/truncated.png"),
        &good[..good.len() / 2],
    )
    .unwrap();
}

#[test]
fn corrupt_images_are_reported_then_skipped_or_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    folder_with_corrupt_images(&data);
    let source = format!("image-folder:{}", data.display());
    // Later flags override earlier ones, so TINY's settings can be adjusted after it.
    let common = ["pretrain", "--method", "moco-v2", "--epochs", "4"];

    let pretrain = |policy: &str| {
        run(train()
            .args(common)
            .args(TINY)
            .args(["--batch-size", "8", "--queue-size", "8", "--data", &source])
            .args(["--on-bad-image", policy, "--out"])
            .arg(dir.path().join(policy)))
    };

    let output = pretrain("fail");
    assert_clean_failure(&output, "unreadable image");

    let output = pretrain("skip");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("corrupt.png") && err.contains("truncated.png"),
        "{err}"
    );
    assert!(err.contains("unreadable images were skipped"), "{err}");
}

#[test]
fn runs_are_never_overwritten_and_resume_keeps_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = run(train().args(["pretrain", "--resume", "--out"]).arg(&out));
    assert_clean_failure(&output, "not a pretraining run directory");

    let output = run(train()
        .args(["pretrain", "--max-steps", "2", "--checkpoint-every", "1"])
        .args(TINY)
        .arg("--out")
        .arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));

    let output = run(train().args(["pretrain"]).args(TINY).arg("--out").arg(&out));
    assert_clean_failure(&output, "pass --resume");

    let output = run(train()
        .args(["pretrain", "--resume", "--lr", "1.0", "--out"])
        .arg(&out));
    assert_clean_failure(&output, "--lr");
}

#[test]
fn eval_without_a_backbone_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(train().args(["eval", "linear", "--run"]).arg(dir.path()));
    assert_clean_failure(&output, "backbone.json");
}

#[test]
fn a_queue_longer_than_the_training_set_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pretrain = |epochs: &str, name: &str| {
        run(train()
            .args(["pretrain", "--method", "moco-v2"])
            .args(TINY)
            .args(["--synthetic-train-size", "64", "--queue-size", "128"])
            .args(["--batch-size", "32", "--epochs", epochs, "--out"])
            .arg(dir.path().join(name)))
    };
    let output = pretrain("2", "two-epochs");
    assert_clean_failure(
        &output,
        "the queue holds 128 keys but the training set has only 64",
    );
    assert!(stderr(&output).contains("--queue-size 64 or less"));
    // One epoch never shows a query its own earlier key.
    let output = pretrain("1", "one-epoch");
    assert!(output.status.success(), "{}", stderr(&output));
}
