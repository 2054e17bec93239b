//! The claims section's lines: each claim tested as the paper states it ("beats" against 0,
//! "at least as well" against a non-inferiority margin), then Holm's correction for their number.

use std::fmt::Write as _;

use crate::stats::{Paired, Verdict};

/// The margin of the "at least as well" claims, in points of the metric's percentage scale
/// (mAP50, mIoU, NME): a shortfall smaller than this counts as "as well".
pub(super) const MARGIN: f64 = 1.0;

/// The family-wise error level of the correction for the number of claims.
const FAMILY_LEVEL: f64 = 0.05;

struct Claim {
    what: String,
    paired: Option<Paired>,
    unit: &'static str,
    /// `Some(margin)` for a non-inferiority claim.
    margin: Option<f64>,
    /// Why the claim gets no verdict, when its comparison would mean nothing.
    withheld: Option<String>,
}

impl Claim {
    /// The difference as tested: moved up by the margin for a non-inferiority claim.
    fn tested(&self) -> Option<Paired> {
        let paired = self.paired.as_ref()?;
        Some(
            self.margin
                .map_or_else(|| paired.clone(), |m| paired.shifted(m)),
        )
    }
}

#[derive(Default)]
pub(super) struct ClaimList {
    claims: Vec<Claim>,
}

impl ClaimList {
    /// "A beats B": holds when the whole interval of `A − B` is above 0.
    pub(super) fn beats(&mut self, what: String, paired: Option<Paired>, unit: &'static str) {
        self.claims.push(Claim {
            what,
            paired,
            unit,
            margin: None,
            withheld: None,
        });
    }

    /// A claim whose comparison would mean nothing: listed with the reason, no verdict, and left
    /// out of the correction for the number of claims.
    pub(super) fn withheld(&mut self, what: String, reason: String) {
        self.claims.push(Claim {
            what,
            paired: None,
            unit: "",
            margin: None,
            withheld: Some(reason),
        });
    }

    /// "A does at least as well as B": holds when the whole interval of `A − B` is above
    /// −[`MARGIN`], is reversed when it is all below it.
    pub(super) fn at_least(&mut self, what: String, paired: Option<Paired>, unit: &'static str) {
        self.claims.push(Claim {
            what,
            paired,
            unit,
            margin: Some(MARGIN),
            withheld: None,
        });
    }

    /// Every claim's line, then the paragraph on their number.
    pub(super) fn write(&self, md: &mut String) {
        for claim in &self.claims {
            if let Some(reason) = &claim.withheld {
                let _ = writeln!(md, "- {}: no verdict: {reason}", claim.what);
                continue;
            }
            let Some(paired) = &claim.paired else {
                let _ = writeln!(md, "- {}: no runs to compare", claim.what);
                continue;
            };
            let seeds: Vec<String> = paired
                .differences
                .iter()
                .map(|(_, d)| format!("{d:+.2}"))
                .collect();
            let verdict = claim.tested().map_or(Verdict::TooFewSeeds, |t| t.verdict());
            let mut word = match verdict {
                Verdict::Holds | Verdict::Reversed => format!("**{}**", verdict.words()),
                _ => verdict.words().to_string(),
            };
            if let Some(margin) = claim.margin {
                word = match verdict {
                    Verdict::NotResolved => {
                        format!("not resolved (the interval contains −{margin})")
                    }
                    _ => format!("{word} (margin −{margin})"),
                };
            }
            let _ = writeln!(
                md,
                "- {}: {}{} (per seed {}) — {word}",
                claim.what,
                paired.interval(),
                claim.unit,
                seeds.join(", ")
            );
        }
        self.multiplicity(md);
    }

    /// Holm's step-down correction over every claim with a p-value.
    fn multiplicity(&self, md: &mut String) {
        let mut tested: Vec<(f64, &Claim)> = self
            .claims
            .iter()
            .filter_map(|c| Some((c.tested()?.p_value()?, c)))
            .collect();
        if tested.is_empty() {
            return;
        }
        tested.sort_by(|a, b| a.0.total_cmp(&b.0));
        let m = tested.len();
        let survivors: Vec<&str> = tested
            .iter()
            .enumerate()
            .take_while(|(i, (p, _))| *p <= FAMILY_LEVEL / (m - i) as f64)
            .map(|(_, (_, c))| c.what.as_str())
            .collect();
        let _ = write!(
            md,
            "\n{m} claims have an interval. Corrected for their number (Holm's step-down method at a {}% family-wise level, on each test's two-sided p-value), ",
            FAMILY_LEVEL * 100.0
        );
        if survivors.is_empty() {
            let _ = writeln!(md, "none keeps its verdict.");
        } else {
            let _ = writeln!(md, "{} keep their verdicts:", survivors.len());
            for what in survivors {
                let _ = writeln!(md, "  - {what}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::seeded;

    #[test]
    fn a_shortfall_within_the_margin_is_as_well_and_holm_keeps_the_strong_claims() {
        let mut claims = ClaimList::default();
        claims.beats("A beats B".into(), seeded(&[5.0, 5.1, 4.9, 5.0, 5.2]), "");
        claims.at_least(
            "C as well as D".into(),
            seeded(&[-0.5, -0.4, -0.6, -0.5, -0.45]),
            "",
        );
        claims.at_least(
            "E as well as F".into(),
            seeded(&[-3.0, -3.2, -2.9, -3.1, -3.0]),
            "",
        );
        claims.beats(
            "G beats H".into(),
            seeded(&[0.1, -0.1, 0.2, -0.2, 0.05]),
            "",
        );
        claims.beats("I beats J".into(), None, "");
        claims.withheld("K beats L".into(), "both score below the floor".into());
        let mut md = String::new();
        claims.write(&mut md);
        assert!(
            md.contains("C as well as D: -0.49 [-0.58, -0.40] (per seed"),
            "{md}"
        );
        assert!(md.contains("— **holds** (margin −1)"), "{md}");
        assert!(md.contains("— **reversed** (margin −1)"), "{md}");
        assert!(md.contains("G beats H") && md.contains("not resolved (the interval contains 0)"));
        assert!(md.contains("I beats J: no runs to compare"));
        assert!(md.contains("K beats L: no verdict: both score below the floor"));
        assert!(md.contains("4 claims have an interval"), "{md}");
        assert!(md.contains("3 keep their verdicts:"), "{md}");
        let kept = &md[md.find("keep their verdicts").unwrap()..];
        assert!(
            kept.contains("A beats B") && kept.contains("C as well") && !kept.contains("G beats")
        );
    }
}
