//! The study's report: `report.md` (the paper's claims checked with paired intervals first,
//! then the tables of mean ± std over seeds, the deviations from the paper, the command,
//! machine and budget), PNG charts beside it, and `results.json` with every run's numbers.
//! The sections live in [`self::sections`], the claims and deviations in [`self::claims`].

mod analysis_sections;
mod claim_list;
mod claims;
mod format;
mod sections;

pub(crate) use self::analysis_sections::INVERSION_FIGURE;

use std::fmt::Write as _;
use std::path::Path;

use crate::stats::{Paired, Stats};
use crate::{Arm, ExperimentError, Study, StudyResults, UNTRAINED};
use exemplar_data::augment::AugmentPreset;
use exemplar_train::finetune::config::TaskKind;

impl StudyResults {
    /// `(seed, value)` of every run of `arm`.
    pub(super) fn per_seed(
        &self,
        arm: Arm,
        metric: impl Fn(&crate::PretrainResult) -> f64,
    ) -> Vec<(u64, f64)> {
        self.pretrain
            .iter()
            .filter(|r| r.is(arm))
            .map(|r| (r.seed, metric(r)))
            .collect()
    }

    pub(super) fn pretrain_metric(
        &self,
        arm: Arm,
        metric: impl Fn(&crate::PretrainResult) -> f64,
    ) -> Option<Stats> {
        let values: Vec<f64> = self
            .per_seed(arm, metric)
            .into_iter()
            .map(|p| p.1)
            .collect();
        Stats::of(&values)
    }

    /// Linear top-1 (%) per seed.
    pub(super) fn linear_per_seed(&self, arm: Arm) -> Vec<(u64, f64)> {
        self.per_seed(arm, |r| r.linear_top1 * 100.0)
    }

    pub(super) fn linear(&self, arm: Arm) -> Option<Stats> {
        self.pretrain_metric(arm, |r| r.linear_top1 * 100.0)
    }

    /// The untrained network's `(seed, value)`.
    pub(super) fn untrained_per_seed(
        &self,
        metric: impl Fn(&crate::PretrainResult) -> f64,
    ) -> Vec<(u64, f64)> {
        self.pretrain
            .iter()
            .filter(|r| r.method == UNTRAINED)
            .map(|r| (r.seed, metric(r)))
            .collect()
    }

    pub(super) fn transfer_per_seed(&self, task: TaskKind, init: &str) -> Vec<(u64, f64)> {
        self.transfer
            .iter()
            .filter(|r| r.task == task.name() && r.init == init)
            .map(|r| (r.seed, r.value))
            .collect()
    }

    /// `a − b` by seed on `task`, signed so that a positive difference favours `a` (NME, where
    /// lower is better, is negated).
    pub(super) fn transfer_favouring(&self, task: TaskKind, a: &str, b: &str) -> Option<Paired> {
        let paired = Paired::by_seed(
            &self.transfer_per_seed(task, a),
            &self.transfer_per_seed(task, b),
        )?;
        Some(if task.lower_is_better() {
            paired.negated()
        } else {
            paired
        })
    }

    pub(super) fn transfer_metric(&self, task: TaskKind, init: &str) -> Option<Stats> {
        let values: Vec<f64> = self
            .transfer_per_seed(task, init)
            .into_iter()
            .map(|p| p.1)
            .collect();
        Stats::of(&values)
    }

    /// What the full augmentation adds over flips alone for `method` on the ablation's
    /// scenes, paired by seed.
    pub(super) fn gain(&self, method: exemplar_train::config::Method) -> Option<Paired> {
        Paired::by_seed(
            &self.linear_per_seed(Arm::ablation(method, AugmentPreset::AugPlus)),
            &self.linear_per_seed(Arm::ablation(method, AugmentPreset::Flip)),
        )
    }

    /// The mean loss curve of an arm over its seeds (they log at the same steps).
    pub(super) fn mean_curve(&self, arm: Arm) -> Vec<(f64, f64, Option<f64>)> {
        let runs: Vec<&Vec<(usize, f64)>> = self
            .pretrain
            .iter()
            .filter(|r| r.is(arm))
            .map(|r| &r.loss_curve)
            .collect();
        let Some(first) = runs.first() else {
            return Vec::new();
        };
        first
            .iter()
            .enumerate()
            .filter_map(|(i, &(step, _))| {
                let values: Vec<f64> = runs.iter().filter_map(|c| c.get(i).map(|p| p.1)).collect();
                Stats::of(&values).map(|s| (step as f64, s.mean, None))
            })
            .collect()
    }
}

/// The instruction-set flags that decide which kernels gemm picks (the CPU bench names the same).
const VECTOR_FLAGS: [&str; 10] = [
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
];

/// The machine, as one line: CPU model, its vector flags, cores available, OS. Machines sold
/// under one model name differ by up to 2× with and without AVX-512.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    let cpu = field("model name").unwrap_or_else(|| "unknown CPU".to_string());
    let flags = field("flags").unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let vector: Vec<&str> = VECTOR_FLAGS
        .into_iter()
        .filter(|f| flags.contains(f))
        .collect();
    let vector = if vector.is_empty() {
        "no AVX2 or AVX-512".to_string()
    } else {
        vector.join(" ")
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu} ({vector}), {cores} cores available, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The current commit, when the study runs in a git checkout.
fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Today's date in UTC, `YYYY-MM-DD` (civil-from-days, so no date crate is needed).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Writes `report.md`, the charts and `results.json` into `out`.
pub fn write(results: &StudyResults, out: &Path) -> Result<(), ExperimentError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExperimentError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let markdown = markdown(results, &mut files);
    files.push(("report.md".into(), markdown.into_bytes()));
    files.push((
        "results.json".into(),
        serde_json::to_vec_pretty(results).expect("results serialise"),
    ));
    for (name, bytes) in files {
        let path = out.join(name);
        exemplar_train::checkpoint::atomic_write(&path, &bytes).map_err(io(&path))?;
    }
    Ok(())
}

fn markdown(results: &StudyResults, files: &mut Vec<(String, Vec<u8>)>) -> String {
    let b = &results.budget;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Exemplar study: the paper's comparisons at small scale\n"
    );
    let _ = writeln!(md, "- command: `{}`", results.command);
    let _ = writeln!(md, "- machine: {}", machine());
    let minutes = |seconds: f64| seconds / 60.0;
    let pretraining = results.pretrain.iter().map(|r| r.seconds).sum::<f64>()
        + results.sweep.iter().map(|r| r.seconds).sum::<f64>();
    let fine_tuning: f64 = results.transfer.iter().map(|r| r.seconds).sum();
    let analyses = results.fewshot.iter().map(|r| r.seconds).sum::<f64>()
        + results.inversion.iter().map(|r| r.seconds).sum::<f64>();
    let split = if analyses > 0.0 {
        format!(
            ": pretraining and scoring {:.1}, fine-tuning {:.1}, few-shot and inversion {:.1}",
            minutes(pretraining),
            minutes(fine_tuning),
            minutes(analyses)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        md,
        "- date: {}, commit {}; the runs took {:.1} min in all{split} ({:.1} min in this invocation, which reused {} runs of earlier ones)",
        today(),
        commit(),
        minutes(pretraining + fine_tuning + analyses),
        minutes(results.seconds),
        results.reused
    );
    let _ = writeln!(
        md,
        "- pretraining: {} ({} images drawn from its training split, {} epochs), ResNet-18 at width {} with the small stem, {} px, batch {}, K = {}, key momentum m = {} with {} shuffled BatchNorm groups, contrastive lr {} at batch 256 (CE: 0.1); {} per arm. Seed s gives every arm the same initial weights, data order and augmentation draws, so arms are compared seed by seed. The settings are `configs/study.toml`{}",
        results.data,
        b.train_subset,
        b.epochs,
        b.width,
        b.image_size,
        b.batch_size,
        b.queue_size,
        b.key_momentum,
        b.bn_splits,
        b.contrastive_lr,
        if results.seeds == 1 {
            "1 seed".to_string()
        } else {
            format!("{} seeds", results.seeds)
        },
        if results.scale == 1.0 {
            String::new()
        } else {
            format!(" with the data scaled by {}", results.scale)
        },
    );
    if results.studies.contains(&Study::Augmentation) {
        let _ = writeln!(
            md,
            "- augmentation ablation: the built-in colour scenes ({} training / {} validation images at {} px, {} epochs), probe fitted on the training images",
            b.ablation_train, b.ablation_val, b.ablation_image_size, b.ablation_epochs
        );
    }
    let _ = writeln!(
        md,
        "- scoring: frozen pooled features of {} training and {} validation images; linear probe ({} epochs) and weighted kNN (k = {})",
        b.probe_train, b.probe_val, b.probe_epochs, b.knn_k
    );
    if results.studies.contains(&Study::Transfer) {
        let _ = writeln!(
            md,
            "- transfer: the built-in scenes (detection, segmentation) and faces (landmarks), {} training / {} validation images at {} px, {} epochs, the whole network fine-tuned",
            b.transfer_train, b.transfer_val, b.transfer_image_size, b.transfer_epochs
        );
    }
    let _ = writeln!(
        md,
        "- cells are mean ± standard deviation over seeds; comparisons are mean paired differences with a Student-t 95% interval over seeds\n"
    );

    claims::claims_section(results, &mut md);
    if results.studies.contains(&Study::Methods) || results.studies.contains(&Study::V1) {
        sections::methods(results, &mut md, files);
    }
    if results.studies.contains(&Study::Augmentation) {
        sections::augmentation(results, &mut md, files);
    }
    if results.studies.contains(&Study::Transfer) {
        sections::transfer(results, &mut md, files);
    }
    let has = |study| results.studies.contains(&study);
    if has(Study::Misalignment) {
        analysis_sections::misalignment(results, &mut md);
    }
    if has(Study::Inversion) {
        analysis_sections::inversion(results, &mut md);
    }
    if has(Study::DetectionErrors) {
        analysis_sections::detection_errors(results, &mut md);
    }
    if has(Study::PretrainingData) {
        analysis_sections::pretraining_data(results, &mut md);
    }
    if has(Study::FewShot) {
        analysis_sections::fewshot(results, &mut md);
    }
    if results.studies.contains(&Study::Sweep) {
        sections::sweep(results, &mut md);
    }
    claims::deviations_section(results, &mut md);
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        let date = today();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"), "{date}");
    }
}
