//! How the report writes its cells, labels and claim lines, shared by every section.

use std::fmt::Write as _;

use exemplar_data::augment::AugmentPreset;

use crate::stats::{Paired, Stats, Verdict};
use crate::{Arm, TRANSFERRED};

/// A cell of mean ± std, or a dash when the arm has no runs.
pub(super) fn cell(stats: Option<Stats>) -> String {
    stats.map_or_else(|| "—".to_string(), |s| s.cell())
}

pub(super) fn ablation_label(step: AugmentPreset) -> &'static str {
    match step {
        AugmentPreset::Flip => "flip",
        AugmentPreset::Crop => "+crop",
        AugmentPreset::Color => "+colour",
        AugmentPreset::Grayscale => "+grayscale",
        AugmentPreset::AugPlus => "+blur (aug+)",
        other => other.name(),
    }
}

pub(super) fn init_label(init: &str) -> String {
    if init == "random" {
        return "random init".to_string();
    }
    TRANSFERRED
        .iter()
        .map(|&m| Arm::default_for(m))
        .find(|a| a.slug() == init)
        .map_or_else(|| init.to_string(), |a| a.label().to_string())
}

/// One claim's line: the paired difference, its interval, the per-seed values and the verdict.
pub(super) fn line(md: &mut String, what: &str, paired: Option<Paired>, unit: &str) {
    let Some(paired) = paired else {
        let _ = writeln!(md, "- {what}: no runs to compare");
        return;
    };
    let seeds: Vec<String> = paired
        .differences
        .iter()
        .map(|(_, d)| format!("{d:+.2}"))
        .collect();
    let verdict = paired.verdict();
    let word = match verdict {
        Verdict::Holds | Verdict::Reversed => format!("**{}**", verdict.words()),
        _ => verdict.words().to_string(),
    };
    let _ = writeln!(
        md,
        "- {what}: {}{unit} (per seed {}) — {word}",
        paired.interval(),
        seeds.join(", ")
    );
}
