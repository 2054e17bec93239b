//! The report's tables and charts: methods, the augmentation ablation (with what each step
//! changes in the views), transfer, and the settings sweep.

use std::fmt::Write as _;

use super::format::{ablation_label, cell, init_label};
use crate::plot::{BarChart, LineChart, Series};
use crate::stats::{Paired, Stats};
use crate::{ABLATED, ABLATION, Arm, METHODS, StudyResults, TASKS, TRANSFERRED};
use exemplar_data::augment::AugmentPreset;

pub(super) fn methods(results: &StudyResults, md: &mut String, files: &mut Vec<(String, Vec<u8>)>) {
    let _ = writeln!(md, "## (a) Methods: linear probe and kNN\n");
    let _ = writeln!(
        md,
        "| method | linear top-1 (%) | kNN top-1 (%) | final loss |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let mut bars = Vec::new();
    let mut curves = Vec::new();
    let untrained = |metric: fn(&crate::PretrainResult) -> f64| {
        let values: Vec<f64> = results
            .untrained_per_seed(metric)
            .into_iter()
            .map(|p| p.1)
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
    // The v1 methods only where the v1 study ran.
    let ran = |arm: Arm| results.pretrain.iter().any(|r| r.is(arm));
    for arm in METHODS
        .map(Arm::default_for)
        .into_iter()
        .filter(|a| ran(*a))
    {
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

pub(super) fn augmentation(
    results: &StudyResults,
    md: &mut String,
    files: &mut Vec<(String, Vec<u8>)>,
) {
    let _ = writeln!(
        md,
        "## (b) Augmentation ablation on the built-in colour scenes: linear top-1 (%)\n"
    );
    let labels: Vec<String> = ABLATED
        .iter()
        .map(|&m| Arm::default_for(m).label().to_string())
        .collect();
    let _ = writeln!(md, "| augmentation | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(ABLATED.len()));
    for step in ABLATION {
        let cells: Vec<String> = ABLATED
            .iter()
            .map(|&method| cell(results.linear(Arm::ablation(method, step))))
            .collect();
        let _ = writeln!(md, "| {} | {} |", ablation_label(step), cells.join(" | "));
    }
    let gains: Vec<String> = ABLATED
        .iter()
        .map(|&method| results.gain(method).map_or("—".into(), |d| d.interval()))
        .collect();
    let _ = writeln!(
        md,
        "| **aug+ − flip** (paired, 95% interval) | {} |",
        gains.join(" | ")
    );
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
                            .linear(Arm::ablation(method, augment))
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
    views_table(results, md);
}

/// What each step changes in the views, per corpus, with the steps that change nothing flagged.
fn views_table(results: &StudyResults, md: &mut String) {
    if results.views.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "What each step adds to the previous arm's views: the mean absolute per-pixel change (on the [0, 1] scale) between the two arms' views of the same {} images with the same draws, and the share of views the step changed at all. A step below {} changes nothing and its row measures noise.\n",
        results.views[0].images,
        crate::views::UNCHANGED_BELOW
    );
    let _ = writeln!(md, "| step | data | size | mean change | views changed | |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---|");
    for change in &results.views {
        let step = change.augment.parse::<AugmentPreset>().map_or_else(
            |_| change.augment.clone(),
            |s| ablation_label(s).to_string(),
        );
        let flag = if change.changes_nothing() {
            "**changes nothing**"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {step} | {} | {} | {:.4} | {:.0}% | {flag} |",
            change.data,
            change.image_size,
            change.mean_change,
            change.views_changed * 100.0
        );
    }
    let _ = writeln!(md);
}

fn transfer_inits() -> Vec<String> {
    std::iter::once("random".to_string())
        .chain(TRANSFERRED.iter().map(|&m| Arm::default_for(m).slug()))
        .collect()
}

pub(super) fn transfer(
    results: &StudyResults,
    md: &mut String,
    files: &mut Vec<(String, Vec<u8>)>,
) {
    let _ = writeln!(
        md,
        "## (c) Transfer to detection, segmentation and landmarks\n"
    );
    let titles: Vec<&str> = TASKS.iter().map(|t| t.metric_title()).collect();
    let _ = writeln!(md, "| initialisation | {} |", titles.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(TASKS.len()));
    for init in transfer_inits() {
        let cells: Vec<String> = TASKS
            .iter()
            .map(|&t| cell(results.transfer_metric(t, &init)))
            .collect();
        let _ = writeln!(md, "| {} | {} |", init_label(&init), cells.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nEach backbone against random initialisation, paired by seed (positive: the backbone does better; NME is negated):\n"
    );
    for task in TASKS {
        for &method in &TRANSFERRED {
            let arm = Arm::default_for(method);
            let paired = results.transfer_favouring(task, &arm.slug(), "random");
            let what = format!("{}: {} − random init", task.metric_title(), arm.label());
            super::format::line(md, &what, paired, "");
        }
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
            y_label: task.metric_title().into(),
            groups: vec![task.metric_title().into()],
            series,
        };
        let name = format!("transfer-{}.png", task.name());
        let _ = writeln!(
            md,
            "![{}]({name})
",
            task.metric_title()
        );
        files.push((name, chart.render()));
    }
}

/// The settings sweep: held-out linear top-1 of each point, paired against the frozen settings.
pub(super) fn sweep(results: &StudyResults, md: &mut String) {
    let _ = writeln!(
        md,
        "## (d) Settings sweep: MoCo-v2, one setting changed at a time\n\nScored by a linear probe fitted on {} and scored on {} further training images, none of them pretrained on; the validation split is not used. Differences are against the frozen settings, paired by seed.\n",
        results.budget.probe_train, results.budget.probe_val
    );
    let _ = writeln!(
        md,
        "| setting | held-out linear top-1 (%) | kNN top-1 (%) | − frozen (points) | minutes per run |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let points: Vec<&str> = results.sweep.iter().fold(Vec::new(), |mut names, r| {
        if !names.contains(&r.point.as_str()) {
            names.push(&r.point);
        }
        names
    });
    let per_seed =
        |point: &str, metric: fn(&crate::sweep::SweepResult) -> f64| -> Vec<(u64, f64)> {
            results
                .sweep
                .iter()
                .filter(|r| r.point == point)
                .map(|r| (r.seed, metric(r)))
                .collect()
        };
    let stats = |values: &[(u64, f64)]| Stats::of(&values.iter().map(|p| p.1).collect::<Vec<_>>());
    let Some(frozen) = points.first() else {
        return;
    };
    let base = per_seed(frozen, |r| r.linear_top1 * 100.0);
    for point in &points {
        let linear = per_seed(point, |r| r.linear_top1 * 100.0);
        let knn = per_seed(point, |r| r.knn_top1 * 100.0);
        let minutes = per_seed(point, |r| r.seconds / 60.0);
        let difference = if point == frozen {
            "—".to_string()
        } else {
            Paired::by_seed(&linear, &base).map_or("—".into(), |d| d.interval())
        };
        let _ = writeln!(
            md,
            "| {point} | {} | {} | {difference} | {:.1} |",
            cell(stats(&linear)),
            cell(stats(&knn)),
            stats(&minutes).map_or(0.0, |s| s.mean)
        );
    }
    let _ = writeln!(md);
}
