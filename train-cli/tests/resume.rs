//! Interrupted runs continue from their last checkpoint: after a clean stop, the result is the
//! same as an uninterrupted run; after SIGKILL, the run resumes and finishes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use common::{TINY, losses, run, stderr, stdout, train};
use exemplar_models::card::load_backbone;

fn backbone_params(run: &Path) -> Vec<f32> {
    #[derive(Default)]
    struct All(Vec<f32>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().iter::<f32>());
        }
    }
    let (backbone, _) = load_backbone(run, &Device::flex()).expect("backbone");
    let mut all = All::default();
    backbone.visit(&mut all);
    all.0
}

#[test]
fn stopping_and_resuming_matches_an_uninterrupted_run() {
    for method in ["exemplar-v2", "supervised"] {
        let dir = tempfile::tempdir().unwrap();
        let straight = dir.path().join("straight");
        let split = dir.path().join("split");
        let base = [
            "pretrain",
            "--method",
            method,
            "--epochs",
            "2",
            "--checkpoint-every",
            "3",
        ];

        let output = run(train()
            .args(base)
            .args(TINY)
            .args(["--max-steps", "9", "--out"])
            .arg(&straight));
        assert!(output.status.success(), "{}", stderr(&output));
        let output = run(train()
            .args(base)
            .args(TINY)
            .args(["--max-steps", "5", "--out"])
            .arg(&split));
        assert!(output.status.success(), "{}", stderr(&output));
        // The last step of a run is always checkpointed, so this continues from step 5.
        let output = run(train()
            .args(["pretrain", "--resume", "--max-steps", "9", "--out"])
            .arg(&split));
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("steps 5..9"),
            "{}",
            stderr(&output)
        );

        let (a, b) = (losses(&straight), losses(&split));
        assert_eq!(
            a.iter().map(|e| e.0).collect::<Vec<_>>(),
            b.iter().map(|e| e.0).collect::<Vec<_>>()
        );
        for ((step, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{method} step {step}: {x} vs {y}"
            );
        }
        let (pa, pb) = (backbone_params(&straight), backbone_params(&split));
        assert_eq!(pa.len(), pb.len());
        let worst = pa
            .iter()
            .zip(&pb)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{method}: backbones differ by up to {worst}");
    }
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = train()
        .args([
            "pretrain",
            "--method",
            "exemplar-v2",
            "--epochs",
            "6",
            "--checkpoint-every",
            "2",
        ])
        .args(TINY)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("train starts");
    let latest = out.join("checkpoints/latest");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let step = std::fs::read_to_string(&latest).ok().and_then(|s| {
            s.trim()
                .strip_prefix("step-")
                .and_then(|n| n.parse::<usize>().ok())
        });
        if step.is_some_and(|s| s >= 6) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no checkpoint within 300 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL"); // SIGKILL on Unix: no chance to clean up
    child.wait().unwrap();
    let killed_at: usize = std::fs::read_to_string(&latest).unwrap().trim()[5..]
        .parse()
        .unwrap();

    let output = run(train().args(["pretrain", "--resume", "--out"]).arg(&out));
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains(&format!("steps {killed_at}..96")), "{err}");
    assert!(stdout(&output).contains("96 steps"), "{}", stdout(&output));
    // One uninterrupted log: strictly increasing steps, ending at the last step.
    let steps: Vec<u64> = losses(&out).iter().map(|e| e.0).collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(steps.last(), Some(&96));
    assert!(out.join("backbone.bpk").exists() && out.join("eval/knn.json").exists());
}
