//! `train experiment` on a tiny configuration: every study runs, the report holds its tables,
//! charts and raw results, and a second invocation reuses every run and reproduces the report.

use std::path::Path;
use std::process::Command;

fn experiment(work: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["experiment", "--data", "synthetic", "--seeds", "2"])
        .args(["--scale", "0.005", "--workers", "1"])
        .arg("--work")
        .arg(work)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("train runs")
}

/// The report without its header lines, which record time and reuse.
fn tables(report: &str) -> String {
    report
        .lines()
        .filter(|l| !l.starts_with("- date:") && !l.starts_with("- command:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_tiny_study_reports_every_arm_and_reruns_from_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("report"));
    let output = experiment(&work, &out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 15 pretraining arms (5 methods on --data, 10 ablation steps on the colour scenes) and the
    // untrained network, × 2 seeds; and 3 tasks × 4 initialisations × 2 seeds.
    assert!(
        stdout.contains("study: 32 pretraining and 24 transfer runs (0 reused)"),
        "{stdout}"
    );

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## (a) Methods",
        "| Exemplar-v2 (aug-plus) |",
        "| MoCo-v1 (v1) |",
        "| untrained (random init) |",
        "## (b) Augmentation ablation",
        "| +grayscale |",
        "**aug+ − flip**",
        "## (c) Transfer",
        "| random init |",
        "## The paper's claims at this scale",
        "1. Exemplar-v2 beats MoCo-v2 on the linear probe",
        "0. MoCo-v2 beats the untrained network",
        "3. Augmentation (aug+ over flip, on the colour scenes)",
        "Student-t 95% interval",
        "(per seed ",
        "| mean change |",
        "## Deviations from the paper",
        "- machine: ",
    ] {
        assert!(report.contains(needle), "{needle} missing from\n{report}");
    }
    assert!(report.contains(" ± "), "{report}");
    for chart in [
        "methods.png",
        "methods-loss.png",
        "augmentation.png",
        "transfer-detection.png",
        "transfer-segmentation.png",
        "transfer-landmarks.png",
    ] {
        let image = image::open(out.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        assert!(image.width() > 400, "{chart}");
        assert!(report.contains(&format!("({chart})")), "{chart} not linked");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let pretrain = results["pretrain"].as_array().unwrap();
    assert_eq!(pretrain.len(), 32);
    for run in pretrain {
        let top1 = run["linear_top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&top1), "{run}");
        let trained = run["method"] != "untrained";
        assert_eq!(
            !run["loss_curve"].as_array().unwrap().is_empty(),
            trained,
            "{run}"
        );
    }
    // Seeds differ: the two seeds of an arm did not train the same network.
    let seeds: Vec<&serde_json::Value> = pretrain
        .iter()
        .filter(|r| r["method"] == "exemplar-v2" && r["augment"] == "aug-plus")
        .collect();
    assert_eq!(seeds.len(), 2);
    assert_ne!(seeds[0]["loss_curve"], seeds[1]["loss_curve"]);

    // Again: nothing retrains and the report's numbers are the same.
    let output = experiment(&work, &out, &[]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(56 reused)"), "{stdout}");
    // The views of every ablation step were measured, on the scenes and on --data.
    assert_eq!(results["views"].as_array().unwrap().len(), 8);
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(tables(&again), tables(&report));
}

#[test]
fn a_changed_configuration_is_retrained_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("report"));
    let output = experiment(&work, &out, &["--study", "transfer", "--seeds", "1"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## (c) Transfer") && !report.contains("## (a) Methods"));
    // A larger scale retrains the backbones: every run fine-tuned from one is redone too. Only
    // the three from random initialisation, whose configuration did not change, are reused.
    let output = experiment(
        &work,
        &out,
        &["--study", "transfer", "--seeds", "1", "--scale", "0.006"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("study: "))
        .unwrap_or_default();
    assert!(
        summary.starts_with("study: 3 pretraining and 12 transfer runs (3 reused)"),
        "{stdout}"
    );
}

#[test]
fn bad_study_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("report"));
    for (flags, expected) in [
        (vec!["--seeds", "0"], "--seeds must be at least 1"),
        (vec!["--scale=-1"], "--scale must be a positive number"),
        (vec!["--study", "everything"], "invalid value 'everything'"),
        (
            vec!["--settings", "/nonexistent/study.toml"],
            "reading /nonexistent/study.toml",
        ),
    ] {
        let output = experiment(&work, &out, &flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
    assert!(!out.exists(), "no report from a refused study");
}
