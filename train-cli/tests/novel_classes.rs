//! Novel-class few-shot from the command line: `train pretrain --base-classes N` trains on the
//! first N classes only, and `train eval few-shot --classes-from N` draws episodes from the
//! others; bad values are clear errors.

mod common;

use common::{TINY, assert_clean_failure, run, stderr, stdout, train};

#[test]
fn a_backbone_pretrained_on_base_classes_is_scored_on_the_novel_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("base");
    let output = run(train()
        .args(["pretrain", "--method", "exemplar-v2", "--max-steps", "2"])
        .args(TINY)
        .args(["--base-classes", "5", "--out"])
        .arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("base_classes = 5"), "{config}");

    let few_shot = |extra: &[&str]| {
        run(train()
            .args([
                "eval",
                "few-shot",
                "--episodes",
                "4",
                "--shots",
                "1",
                "--run",
            ])
            .arg(&out)
            .args(extra))
    };
    let all = few_shot(&[]);
    assert!(all.status.success(), "{}", stderr(&all));
    let novel = few_shot(&["--classes-from", "5"]);
    assert!(novel.status.success(), "{}", stderr(&novel));
    // The built-in scenes' 200 validation images cycle through 10 classes: half are novel.
    assert!(stdout(&all).contains("200 images"), "{}", stdout(&all));
    assert!(stdout(&novel).contains("100 images"), "{}", stdout(&novel));

    // Four novel classes (6 to 9) are too few for 5-way episodes; none at all is an error of
    // its own.
    assert_clean_failure(&few_shot(&["--classes-from", "6"]), "need 5 classes");
    assert_clean_failure(
        &few_shot(&["--classes-from", "10"]),
        "has no images of classes from 10 on",
    );
}

#[test]
fn no_base_classes_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(train()
        .args(["pretrain", "--max-steps", "1", "--base-classes", "0"])
        .args(TINY)
        .arg("--out")
        .arg(dir.path().join("none")));
    assert_clean_failure(&output, "base_classes must be at least 1");
}
