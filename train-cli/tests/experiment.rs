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
    let studies = ["--study", "methods,v1,augmentation,transfer"];
    let output = experiment(&work, &out, &studies);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 15 pretraining arms (5 methods on --data, 10 ablation steps on the colour scenes) and the
    // untrained network, × 2 seeds; and 3 tasks × 4 initialisations × 2 seeds.
    assert!(
        stdout.contains("study: 32 pretraining, 24 transfer and 0 analysis runs (0 reused)"),
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
    let output = experiment(&work, &out, &studies);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(56 reused)"), "{stdout}");
    // The views of every ablation step were measured, on the scenes and on --data.
    assert_eq!(results["views"].as_array().unwrap().len(), 8);
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(tables(&again), tables(&report));
}

/// The paper's analyses (misalignment, inversion, detection errors, pretraining data,
/// novel-class few-shot) on a tiny configuration: each part of the report is there with its
/// paired comparisons and picture, and a second invocation reuses every run.
#[test]
fn the_analyses_report_each_part_and_rerun_from_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("report"));
    let studies = [
        "--study",
        "misalignment,inversion,detection-errors,pretraining-data,few-shot",
    ];
    let output = experiment(&work, &out, &studies);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 3 methods on 5 corpora (main, textures, faces, a tenth, the base classes) and on the
    // scenes the inversion needs, × 2 seeds; 3 tasks from each of the 15 backbones of the
    // corpora and detection from random init × 2 seeds; few-shot on 6 backbones and inversion
    // of 3, × 2 seeds.
    assert!(
        stdout.contains("study: 36 pretraining, 92 transfer and 18 analysis runs (0 reused)"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## (e) Task misalignment",
        "| CE on faces (identities) |",
        "MoCo-v2 vs CE: ",
        "## (f) Feature inversion",
        "| Exemplar-v2 | ",
        "CE vs MoCo-v2: ",
        "## (g) Detection errors",
        "localisation: CE − Exemplar-v2: ",
        "## (h) Pretraining data",
        "| 10% of the main data |",
        "| base classes of the main data |",
        "Change from pretraining on the main data",
        "## (i) Few-shot on novel classes",
        "1-shot, base-class backbones: Exemplar-v2 − CE: ",
        "4. Misalignment (pretrained on face identities",
        "5. Inversion: Exemplar-v2's features keep more",
        "6. CE's detector errs more by localisation",
        "7. Pretrained on 10% of the main data",
        "8. On classes unseen in pretraining",
        "Novel-class few-shot: the main data's first 5 classes",
    ] {
        assert!(report.contains(needle), "{needle} missing from\n{report}");
    }
    assert!(!report.contains("no runs to compare"), "{report}");
    let figure = image::open(out.join("inversion.png")).expect("the inversion picture");
    assert!(figure.width() > 4 * 96, "four columns of enlarged panels");
    assert!(report.contains("(inversion.png)"));

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let fewshot = results["fewshot"].as_array().unwrap();
    assert_eq!(fewshot.len(), 12);
    for run in fewshot {
        for key in ["one_shot", "five_shot"] {
            let accuracy = run[key].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&accuracy), "{run}");
        }
    }
    let inversion = results["inversion"].as_array().unwrap();
    assert_eq!(inversion.len(), 6);
    for run in inversion {
        for key in ["mse", "matched_mse", "flat_mse"] {
            let values = run[key].as_array().unwrap();
            assert_eq!(values.len(), 10, "{key}: {run}");
            assert!(
                values
                    .iter()
                    .all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap()))
            );
        }
        let edges = run["edge_correlation"].as_array().unwrap();
        assert_eq!(edges.len(), 10, "{run}");
        assert!(
            edges
                .iter()
                .all(|v| (-1.0..=1.0).contains(&v.as_f64().unwrap()))
        );
    }
    let detection: Vec<&serde_json::Value> = results["transfer"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task"] == "detection")
        .collect();
    assert_eq!(detection.len(), 2 * 16);
    for run in detection {
        let errors = &run["errors"];
        let examined = errors["examined"].as_u64().expect("a breakdown");
        let types: u64 = ["localisation", "confusion", "background"]
            .iter()
            .map(|k| errors[k].as_u64().unwrap())
            .sum();
        assert_eq!(types, examined, "{run}");
    }

    let output = experiment(&work, &out, &studies);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(146 reused)"), "{stdout}");
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
        summary.starts_with("study: 3 pretraining, 12 transfer and 0 analysis runs (3 reused)"),
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

#[test]
fn the_plan_runs_one_run_at_a_time_and_the_report_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("report"));
    let study = ["--study", "transfer", "--seeds", "1"];
    fn with<'a>(study: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [study, extra].concat()
    }

    // Three backbones (stage 1), then 3 tasks × 4 initialisations (stage 2).
    let output = experiment(&work, &out, &with(&study, &["--plan"]));
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 15, "{stdout}");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line[0], index.to_string(), "{stdout}");
        assert_eq!(line[1], if index < 3 { "1" } else { "2" }, "{stdout}");
    }
    assert_eq!(lines[0][2], "supervised+supervised seed 0");
    assert!(String::from_utf8_lossy(&output.stderr).contains("stage 2 = 3..15"));
    assert!(!work.exists() && !out.exists(), "--plan runs nothing");
    let index_of = |name: &str| {
        lines
            .iter()
            .position(|l| l[2] == name)
            .unwrap_or_else(|| panic!("{name} not in {stdout}"))
            .to_string()
    };

    // A fine-tuning run before its backbone is a clear error; from random init it needs none.
    let from_ce = index_of("detection from supervised+supervised seed 0");
    let output = experiment(&work, &out, &with(&study, &["--only", &from_ce]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("run the plan's stage-1 runs first"),
        "{stderr}"
    );
    let from_random = index_of("detection from random seed 0");
    for only in ["0", &from_random, &from_ce] {
        let output = experiment(&work, &out, &with(&study, &["--only", only]));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(&format!("run {only} done")), "{stdout}");
    }
    assert!(!out.exists(), "--only writes no report");
    let output = experiment(&work, &out, &with(&study, &["--only", "15"]));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the plan has 15 runs"));

    // The full invocation reuses the three finished runs and writes the report.
    let output = experiment(&work, &out, &study);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(3 reused)"), "{stdout}");
    assert!(out.join("report.md").exists());
}

/// The Kubernetes Indexed Jobs (docker/k8s/study-*.yaml) run every study but the sweep: as many
/// completions as each stage of that plan has runs, stage 2 offset by stage 1's.
#[test]
fn the_cluster_jobs_match_the_full_plan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // `Study::ALL` as `--study` takes it: methods,v1,…,few-shot.
    let names: Vec<String> = exemplar_study::Study::ALL
        .iter()
        .filter_map(clap::ValueEnum::to_possible_value)
        .map(|v| v.get_name().to_string())
        .collect();
    let every_study = names.join(",");
    let output = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "experiment",
            "--data",
            "synthetic",
            "--plan",
            "--study",
            &every_study,
        ])
        .arg("--settings")
        .arg(root.join("configs/study.toml"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stderr
        .lines()
        .find_map(|l| l.strip_prefix("plan: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    // `140 runs, stage 1 = 0..80, stage 2 = 80..140`
    let numbers: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [total, 1, 0, one, 2, stage_two, end] = numbers[..] else {
        panic!("{summary}");
    };
    assert_eq!((end, stage_two), (total, one), "{summary}");
    let manifest =
        |name: &str| std::fs::read_to_string(root.join("docker/k8s").join(name)).unwrap();
    let pretrain = manifest("study-1-pretrain.yaml");
    assert!(
        pretrain.contains(&format!("completions: {one}\n")),
        "{summary}"
    );
    assert!(pretrain.contains(r#"--only "$JOB_COMPLETION_INDEX""#));
    let transfer = manifest("study-2-transfer.yaml");
    assert!(
        transfer.contains(&format!("completions: {}\n", total - one)),
        "{summary}"
    );
    assert!(transfer.contains(&format!(r#"--only "$(({one} + JOB_COMPLETION_INDEX))""#)));
    let report = manifest("study-3-report.yaml");
    assert!(!report.contains("--only") && report.contains("train experiment"));
    for jobs in [&pretrain, &transfer, &report] {
        assert!(jobs.contains("claimName: exemplar-study-runs"));
        assert!(jobs.contains(&format!("--study {every_study}\n")));
    }
}
