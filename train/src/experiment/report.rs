//! The study's report: `report.md` (tables of mean ± std over seeds, the paper's claims checked
//! one by one, the command, machine and budget), PNG charts beside it, and `results.json` with
//! every run's numbers.

use std::fmt::Write as _;
use std::path::Path;

use super::plot::{BarChart, LineChart, Series};
use super::{
    ABLATED, ABLATION, Arm, ExperimentError, METHODS, Study, StudyResults, TASKS, TRANSFERRED,
};
use crate::augment::AugmentPreset;
use crate::config::Method;
use crate::finetune::config::TaskKind;

/// Mean, sample standard deviation and count of some numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Self {
            mean,
            std: var.sqrt(),
            n,
        })
    }

    /// Standard error of the mean.
    fn se(&self) -> f64 {
        self.std / (self.n as f64).sqrt()
    }

    fn cell(&self) -> String {
        format!("{:.2} ± {:.2}", self.mean, self.std)
    }
}

fn cell(stats: Option<Stats>) -> String {
    stats.map_or_else(|| "—".to_string(), |s| s.cell())
}

/// A difference of two means with its standard error, and the fewest seeds behind either.
#[derive(Debug, Clone, Copy)]
struct Difference {
    value: f64,
    se: f64,
    seeds: usize,
}

impl Difference {
    /// `a − b`, where higher is better.
    fn between(a: Stats, b: Stats) -> Self {
        Self {
            value: a.mean - b.mean,
            se: (a.se().powi(2) + b.se().powi(2)).sqrt(),
            seeds: a.n.min(b.n),
        }
    }

    /// `self − other`, for a difference of differences.
    fn minus(self, other: Difference) -> Self {
        Self {
            value: self.value - other.value,
            se: (self.se.powi(2) + other.se.powi(2)).sqrt(),
            seeds: self.seeds.min(other.seeds),
        }
    }

    /// How the difference reads against its noise: it "holds" when it exceeds twice its
    /// standard error, is "reversed" below minus twice, and is unresolved in between.
    fn read(self) -> (f64, &'static str) {
        let word = if self.seeds < 2 {
            "one seed: no verdict"
        } else if self.value > 2.0 * self.se {
            "holds"
        } else if self.value < -2.0 * self.se {
            "reversed"
        } else {
            "not resolved (within 2 standard errors)"
        };
        (self.value, word)
    }
}

impl StudyResults {
    fn pretrain_metric(
        &self,
        arm: Arm,
        metric: impl Fn(&super::PretrainResult) -> f64,
    ) -> Option<Stats> {
        let values: Vec<f64> = self
            .pretrain
            .iter()
            .filter(|r| r.method == arm.method.name() && r.augment == arm.augment.name())
            .map(metric)
            .collect();
        Stats::of(&values)
    }

    fn linear(&self, arm: Arm) -> Option<Stats> {
        self.pretrain_metric(arm, |r| r.linear_top1 * 100.0)
    }

    fn transfer_metric(&self, task: TaskKind, init: &str) -> Option<Stats> {
        let values: Vec<f64> = self
            .transfer
            .iter()
            .filter(|r| r.task == task.name() && r.init == init)
            .map(|r| r.value)
            .collect();
        Stats::of(&values)
    }

    /// The mean loss curve of an arm over its seeds (they log at the same steps).
    fn mean_curve(&self, arm: Arm) -> Vec<(f64, f64, Option<f64>)> {
        let runs: Vec<&Vec<(usize, f64)>> = self
            .pretrain
            .iter()
            .filter(|r| r.method == arm.method.name() && r.augment == arm.augment.name())
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

fn task_title(task: TaskKind) -> &'static str {
    match task {
        TaskKind::Detection => "detection VOC07 mAP50 (%)",
        TaskKind::Segmentation => "segmentation mIoU (%)",
        TaskKind::Landmarks => "landmarks NME (%, lower is better)",
        TaskKind::Classification => "classification top-1 (%)",
    }
}

fn lower_is_better(task: TaskKind) -> bool {
    task == TaskKind::Landmarks
}

fn ablation_label(step: AugmentPreset) -> &'static str {
    match step {
        AugmentPreset::Flip => "flip",
        AugmentPreset::Crop => "+crop",
        AugmentPreset::Color => "+colour",
        AugmentPreset::Grayscale => "+grayscale",
        AugmentPreset::AugPlus => "+blur (aug+)",
        other => other.name(),
    }
}

fn init_label(init: &str) -> String {
    if init == "random" {
        return "random init".to_string();
    }
    TRANSFERRED
        .iter()
        .map(|&m| Arm::default_for(m))
        .find(|a| a.slug() == init)
        .map_or_else(|| init.to_string(), |a| a.label().to_string())
}

/// The machine, as one line: CPU model, cores available, OS.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} cores available, {} {}",
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
        crate::checkpoint::atomic_write(&path, &bytes).map_err(io(&path))?;
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
    let compute: f64 = results.pretrain.iter().map(|r| r.seconds).sum::<f64>()
        + results.transfer.iter().map(|r| r.seconds).sum::<f64>();
    let _ = writeln!(
        md,
        "- date: {}, commit {}; the runs took {:.1} min in all ({:.1} min in this invocation, which reused {} runs of earlier ones)",
        today(),
        commit(),
        compute / 60.0,
        results.seconds / 60.0,
        results.reused
    );
    let _ = writeln!(
        md,
        "- pretraining: {} ({} images drawn from its training split, {} epochs), ResNet-18 at width {} with the small stem, {} px, batch {}, K = {}; {} seeds per arm (initialisation, sampling and augmentation differ; the data do not)",
        results.data,
        b.train_subset,
        b.epochs,
        b.width,
        b.image_size,
        b.batch_size,
        b.queue_size,
        results.seeds
    );
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
    let _ = writeln!(md, "- cells are mean ± standard deviation over seeds\n");

    if results.studies.contains(&Study::Methods) {
        methods_section(results, &mut md, files);
    }
    if results.studies.contains(&Study::Augmentation) {
        augmentation_section(results, &mut md, files);
    }
    if results.studies.contains(&Study::Transfer) {
        transfer_section(results, &mut md, files);
    }
    claims_section(results, &mut md);
    md
}

fn methods_section(results: &StudyResults, md: &mut String, files: &mut Vec<(String, Vec<u8>)>) {
    let _ = writeln!(md, "## (a) Methods: linear probe and kNN\n");
    let _ = writeln!(
        md,
        "| method | linear top-1 (%) | kNN top-1 (%) | final loss |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let mut bars = Vec::new();
    let mut curves = Vec::new();
    let untrained = |metric: fn(&super::PretrainResult) -> f64| {
        let values: Vec<f64> = results
            .pretrain
            .iter()
            .filter(|r| r.method == super::UNTRAINED)
            .map(metric)
            .collect();
        Stats::of(&values)
    };
    let (linear, knn) = (
        untrained(|r| r.linear_top1 * 100.0),
        untrained(|r| r.knn_top1 * 100.0),
    );
    if linear.is_some() {
        let _ = writeln!(
            md,
            "| untrained (random init) | {} | {} | — |",
            cell(linear),
            cell(knn)
        );
        bars.push((
            "untrained".to_string(),
            vec![
                linear.map(|s| (s.mean, s.std)),
                knn.map(|s| (s.mean, s.std)),
            ],
        ));
    }
    for method in METHODS {
        let arm = Arm::default_for(method);
        let linear = results.linear(arm);
        let knn = results.pretrain_metric(arm, |r| r.knn_top1 * 100.0);
        let loss = results.pretrain_metric(arm, |r| r.loss_curve.last().map_or(f64::NAN, |p| p.1));
        let _ = writeln!(
            md,
            "| {} ({}) | {} | {} | {} |",
            arm.label(),
            arm.augment.name(),
            cell(linear),
            cell(knn),
            cell(loss),
        );
        bars.push((
            arm.label().to_string(),
            vec![
                linear.map(|s| (s.mean, s.std)),
                knn.map(|s| (s.mean, s.std)),
            ],
        ));
        curves.push(Series {
            name: arm.label().to_string(),
            points: results.mean_curve(arm),
        });
    }
    let chart = BarChart {
        title: "Frozen features: top-1 (%)".into(),
        y_label: "top-1 (%)".into(),
        groups: vec!["linear probe".into(), "kNN".into()],
        series: bars,
    };
    files.push(("methods.png".into(), chart.render()));
    let chart = LineChart {
        title: "Pretraining loss (mean over seeds)".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        series: curves,
        x_categories: Vec::new(),
    };
    files.push(("methods-loss.png".into(), chart.render()));
    let _ = writeln!(
        md,
        "\n![top-1 per method](methods.png)\n\n![training loss per method](methods-loss.png)\n\nEach loss is the method's own objective (cross-entropy over classes, InfoNCE over 1 + K candidates, fewer for Exemplar, whose same-class negatives are masked), so curves show convergence, not a ranking. The contrastive losses rise at first while the queue fills with negatives.\n"
    );
}

fn augmentation_section(
    results: &StudyResults,
    md: &mut String,
    files: &mut Vec<(String, Vec<u8>)>,
) {
    let _ = writeln!(md, "## (b) Augmentation ablation: linear top-1 (%)\n");
    let labels: Vec<String> = ABLATED
        .iter()
        .map(|&m| Arm::default_for(m).label().to_string())
        .collect();
    let _ = writeln!(md, "| augmentation | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(ABLATED.len()));
    for step in ABLATION {
        let cells: Vec<String> = ABLATED
            .iter()
            .map(|&method| {
                cell(results.linear(Arm {
                    method,
                    augment: step,
                }))
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", ablation_label(step), cells.join(" | "));
    }
    let gains: Vec<String> = ABLATED
        .iter()
        .map(|&method| gain(results, method).map_or("—".into(), |d| format!("{:+.2}", d.value)))
        .collect();
    let _ = writeln!(md, "| **aug+ − flip** | {} |", gains.join(" | "));
    let chart = LineChart {
        title: "Augmentation ablation: linear top-1 (%)".into(),
        x_label: "augmentation (cumulative)".into(),
        y_label: "top-1 (%)".into(),
        series: ABLATED
            .iter()
            .map(|&method| Series {
                name: Arm::default_for(method).label().to_string(),
                points: ABLATION
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &augment)| {
                        results
                            .linear(Arm { method, augment })
                            .map(|s| (i as f64, s.mean, Some(s.std)))
                    })
                    .collect(),
            })
            .collect(),
        x_categories: ABLATION
            .iter()
            .map(|&s| ablation_label(s).to_string())
            .collect(),
    };
    files.push(("augmentation.png".into(), chart.render()));
    let _ = writeln!(
        md,
        "\n![linear top-1 along the augmentation ablation](augmentation.png)\n"
    );
}

/// What the full augmentation adds over flips alone, for `method`.
fn gain(results: &StudyResults, method: Method) -> Option<Difference> {
    let full = results.linear(Arm {
        method,
        augment: AugmentPreset::AugPlus,
    })?;
    let flip = results.linear(Arm {
        method,
        augment: AugmentPreset::Flip,
    })?;
    Some(Difference::between(full, flip))
}

fn transfer_inits() -> Vec<String> {
    std::iter::once("random".to_string())
        .chain(TRANSFERRED.iter().map(|&m| Arm::default_for(m).slug()))
        .collect()
}

fn transfer_section(results: &StudyResults, md: &mut String, files: &mut Vec<(String, Vec<u8>)>) {
    let _ = writeln!(
        md,
        "## (c) Transfer to detection, segmentation and landmarks\n"
    );
    let titles: Vec<&str> = TASKS.iter().map(|&t| task_title(t)).collect();
    let _ = writeln!(md, "| initialisation | {} |", titles.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(TASKS.len()));
    for init in transfer_inits() {
        let cells: Vec<String> = TASKS
            .iter()
            .map(|&t| cell(results.transfer_metric(t, &init)))
            .collect();
        let _ = writeln!(md, "| {} | {} |", init_label(&init), cells.join(" | "));
    }
    let _ = writeln!(md);
    // One chart per task: their metrics live on different scales.
    for task in TASKS {
        let series = transfer_inits()
            .iter()
            .map(|init| {
                let stats = results.transfer_metric(task, init);
                (init_label(init), vec![stats.map(|s| (s.mean, s.std))])
            })
            .collect();
        let chart = BarChart {
            title: format!("Transfer: {}", task.name()),
            y_label: task_title(task).into(),
            groups: vec![task_title(task).into()],
            series,
        };
        let name = format!("transfer-{}.png", task.name());
        let _ = writeln!(
            md,
            "![{}]({name})
",
            task_title(task)
        );
        files.push((name, chart.render()));
    }
}

/// One claim's line: the difference and its verdict.
fn report(md: &mut String, what: &str, difference: Difference, unit: &str) {
    let (d, word) = difference.read();
    let _ = writeln!(md, "- {what}: {d:+.2}{unit} — **{word}**");
}

fn claims_section(results: &StudyResults, md: &mut String) {
    let _ = writeln!(md, "## The paper's claims at this scale\n");
    let _ = writeln!(
        md,
        "A claim *holds* when the difference exceeds twice its standard error over seeds, is *reversed* below minus twice, and is *not resolved* in between.\n"
    );
    let compare = |md: &mut String, what: &str, a: Option<Stats>, b: Option<Stats>, unit: &str| {
        if let (Some(a), Some(b)) = (a, b) {
            report(md, what, Difference::between(a, b), unit);
        }
    };
    if results.studies.contains(&Study::Methods) {
        let arm = Arm::default_for;
        compare(
            md,
            "1. Exemplar-v2 beats MoCo-v2 on the linear probe",
            results.linear(arm(Method::ExemplarV2)),
            results.linear(arm(Method::MocoV2)),
            " points",
        );
        compare(
            md,
            "1'. Exemplar-v1 beats MoCo-v1 on the linear probe",
            results.linear(arm(Method::ExemplarV1)),
            results.linear(arm(Method::MocoV1)),
            " points",
        );
    }
    if results.studies.contains(&Study::Transfer) {
        let exemplar = Arm::default_for(Method::ExemplarV2).slug();
        let ce = Arm::default_for(Method::Supervised).slug();
        for task in TASKS {
            let (a, b) = (
                results.transfer_metric(task, &exemplar),
                results.transfer_metric(task, &ce),
            );
            // Compare so that a positive difference always favours Exemplar-v2.
            let flip = |s: Option<Stats>| s.map(|s| Stats { mean: -s.mean, ..s });
            let (a, b) = if lower_is_better(task) {
                (flip(a), flip(b))
            } else {
                (a, b)
            };
            compare(
                md,
                &format!(
                    "2. Exemplar-v2 transfers at least as well as CE: {}",
                    task_title(task)
                ),
                a,
                b,
                "",
            );
        }
    }
    if let (true, Some(moco), Some(ce)) = (
        results.studies.contains(&Study::Augmentation),
        gain(results, Method::MocoV2),
        gain(results, Method::Supervised),
    ) {
        report(
            md,
            "3. Augmentation (aug+ over flip) helps MoCo-v2 more than CE",
            moco.minus(ce),
            " points",
        );
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Difference::read`] of `a − b`.
    fn verdict(a: Stats, b: Stats) -> (f64, &'static str) {
        Difference::between(a, b).read()
    }

    #[test]
    fn statistics_use_the_sample_deviation() {
        let s = Stats::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stats::of(&[5.0]).unwrap().std, 0.0);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn a_verdict_needs_the_difference_to_clear_its_noise() {
        let a = Stats {
            mean: 10.0,
            std: 1.0,
            n: 4,
        };
        let b = Stats {
            mean: 8.0,
            std: 1.0,
            n: 4,
        };
        assert_eq!(verdict(a, b).1, "holds");
        assert_eq!(verdict(b, a).1, "reversed");
        let close = Stats {
            mean: 9.0,
            std: 1.0,
            n: 4,
        };
        assert!(verdict(close, b).1.starts_with("not resolved"));
        assert!(verdict(Stats { n: 1, ..a }, b).1.starts_with("one seed"));
    }

    #[test]
    fn dates_are_civil() {
        let date = today();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"), "{date}");
    }
}
