//! The study's statistics: summaries of one arm over seeds, and paired differences between
//! two arms with a Student-t 95% interval.
//!
//! The arms of the study are paired by seed: seed `s` gives every arm the same initial weights,
//! the same data order and the same augmentation draws. So a comparison is made seed by seed
//! (`a[s] − b[s]`) and its interval comes from the spread of those differences, with `n − 1`
//! degrees of freedom. A claim *holds* when the whole interval lies on its side of zero.

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

    /// `mean ± std`, the report's cell (the value alone for one seed).
    pub fn cell(&self) -> String {
        if self.n < 2 {
            format!("{:.2}", self.mean)
        } else {
            format!("{:.2} ± {:.2}", self.mean, self.std)
        }
    }
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    // Exact to three decimals for small df; the Cornish–Fisher expansion beyond.
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let (z, n): (f64, f64) = (1.959_964, df as f64);
            z + (z.powi(3) + z) / (4.0 * n)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// `P(T ≤ t)` for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// The regularised incomplete beta function `I_x(a, b)`, by its continued fraction (Lentz's
/// method, as in Numerical Recipes' `betai`).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let tiny = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / tiny(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for numerator in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 / tiny(1.0 + numerator * d);
            c = tiny(1.0 + numerator / c);
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |sum, (i, g)| sum + g / (x + i as f64 + 1.0));
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// How a paired difference reads against its interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval is above zero.
    Holds,
    /// The whole interval is below zero.
    Reversed,
    /// The interval contains zero.
    NotResolved,
    /// Fewer than two paired seeds: no interval.
    TooFewSeeds,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Reversed => "reversed",
            Verdict::NotResolved => "not resolved (the interval contains 0)",
            Verdict::TooFewSeeds => "fewer than 2 paired seeds: no verdict",
        }
    }
}

/// The mean of per-seed differences `a[s] − b[s]` with its 95% interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// The per-seed differences as `(seed, difference)`, in the first arm's seed order.
    pub differences: Vec<(u64, f64)>,
    pub mean: f64,
    /// Half-width of the 95% interval (infinite with one seed).
    pub half_width: f64,
}

impl Paired {
    /// From the per-seed differences (seeds missing from either arm already left out).
    pub fn of(differences: Vec<(u64, f64)>) -> Option<Self> {
        let values: Vec<f64> = differences.iter().map(|&(_, d)| d).collect();
        let stats = Stats::of(&values)?;
        let half_width = if stats.n < 2 {
            f64::INFINITY
        } else {
            t_quantile_975(stats.n - 1) * stats.std / (stats.n as f64).sqrt()
        };
        Some(Self {
            differences,
            mean: stats.mean,
            half_width,
        })
    }

    /// Pairs `a` and `b` by seed: `a[s] − b[s]` for every seed both have.
    pub fn by_seed(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Self> {
        let differences = a
            .iter()
            .filter_map(|&(seed, x)| {
                b.iter()
                    .find(|&&(other, _)| other == seed)
                    .map(|&(_, y)| (seed, x - y))
            })
            .collect();
        Self::of(differences)
    }

    /// The differences with their sign flipped, for metrics where lower is better.
    pub fn negated(&self) -> Self {
        Self {
            differences: self.differences.iter().map(|&(s, d)| (s, -d)).collect(),
            mean: -self.mean,
            half_width: self.half_width,
        }
    }

    /// `self − other` seed by seed (a difference of differences), for the seeds both have.
    pub fn minus(&self, other: &Paired) -> Option<Self> {
        Self::by_seed(&self.differences, &other.differences)
    }

    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// The same differences moved up by `margin`: a non-inferiority test ("at least as well,
    /// within `margin`") is this one's test against 0.
    pub fn shifted(&self, margin: f64) -> Self {
        Self {
            differences: self
                .differences
                .iter()
                .map(|&(s, d)| (s, d + margin))
                .collect(),
            mean: self.mean + margin,
            half_width: self.half_width,
        }
    }

    /// The two-sided p-value of a mean of 0, on the interval's own t distribution (`None` with
    /// fewer than two seeds).
    pub fn p_value(&self) -> Option<f64> {
        let df = self.seeds().checked_sub(1).filter(|&df| df > 0)?;
        let standard_error = self.half_width / t_quantile_975(df);
        if standard_error == 0.0 {
            return Some(if self.mean == 0.0 { 1.0 } else { 0.0 });
        }
        let t = (self.mean / standard_error).abs();
        Some(2.0 * (1.0 - t_cdf(t, df as f64)))
    }

    pub fn seeds(&self) -> usize {
        self.differences.len()
    }

    pub fn verdict(&self) -> Verdict {
        if self.seeds() < 2 {
            Verdict::TooFewSeeds
        } else if self.low() > 0.0 {
            Verdict::Holds
        } else if self.high() < 0.0 {
            Verdict::Reversed
        } else {
            Verdict::NotResolved
        }
    }

    /// `+1.23 [+0.10, +2.36]`, the report's way of writing it (a mean that rounds to zero is
    /// written `+0.00`, never `-0.00`).
    pub fn interval(&self) -> String {
        let mean = if self.mean.abs() < 0.005 {
            0.0
        } else {
            self.mean
        };
        if self.half_width.is_finite() {
            format!("{:+.2} [{:+.2}, {:+.2}]", mean, self.low(), self.high())
        } else {
            format!("{mean:+.2} [no interval]")
        }
    }
}

/// Differences for seeds 0, 1, 2, … (for tests).
#[cfg(test)]
pub(crate) fn seeded(differences: &[f64]) -> Option<Paired> {
    Paired::of(
        differences
            .iter()
            .enumerate()
            .map(|(s, &d)| (s as u64, d))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_use_the_sample_deviation() {
        let s = Stats::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stats::of(&[5.0]).unwrap().std, 0.0);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn the_t_distribution_gives_back_its_quantiles() {
        for df in 1..=40 {
            let p = t_cdf(t_quantile_975(df), df as f64);
            assert!((p - 0.975).abs() < 2e-4, "df {df}: {p}");
            assert!((t_cdf(-t_quantile_975(df), df as f64) - 0.025).abs() < 2e-4);
        }
        assert_eq!(t_cdf(0.0, 3.0), 0.5);
        // t(1) is Cauchy: P(T ≤ 1) = 3/4.
        assert!((t_cdf(1.0, 1.0) - 0.75).abs() < 1e-12);
        // A p-value at the interval's edge is 5%.
        let edge = Paired::of(vec![(0, 1.0), (1, 3.0), (2, 2.5)]).unwrap();
        assert!((edge.shifted(-edge.low()).p_value().unwrap() - 0.05).abs() < 1e-3);
    }

    #[test]
    fn the_t_quantile_matches_the_tables_and_tends_to_the_normal() {
        assert_eq!(t_quantile_975(2), 4.303);
        assert_eq!(t_quantile_975(4), 2.776);
        // Beyond the table, the expansion must continue it smoothly (t(40) = 2.021, t(120) = 1.980).
        assert!((t_quantile_975(40) - 2.021).abs() < 0.002);
        assert!((t_quantile_975(120) - 1.980).abs() < 0.002);
        assert!(t_quantile_975(31) < t_quantile_975(30));
        assert!(t_quantile_975(0).is_infinite());
    }

    #[test]
    fn pairing_removes_the_noise_the_arms_share() {
        // Seeds move both arms together; `a` is always 1 point above `b`.
        let a = [(0, 70.0), (1, 75.0), (2, 72.0)];
        let b = [(0, 69.0), (1, 74.1), (2, 70.9)];
        let paired = Paired::by_seed(&a, &b).unwrap();
        assert!((paired.mean - 1.0).abs() < 1e-9);
        assert_eq!(paired.verdict(), Verdict::Holds);
        // The old study's per-seed differences. v1's 2.12 / −0.44 / 2.26 are not resolved. v2's
        // 2.70 / 1.34 / 1.30 are +1.78 ± 0.46 (one standard error), past two standard errors but
        // not past t(2) = 4.30 of them: not resolved by 3 seeds either.
        assert_eq!(
            seeded(&[2.12, -0.44, 2.26]).unwrap().verdict(),
            Verdict::NotResolved
        );
        let v2 = seeded(&[2.70, 1.34, 1.30]).unwrap();
        assert_eq!(v2.verdict(), Verdict::NotResolved);
        assert!(
            (v2.low() - -0.20).abs() < 0.01 && (v2.high() - 3.76).abs() < 0.01,
            "{v2:?}"
        );
        assert_eq!(
            seeded(&[2.70, 1.34, 1.30, 2.0, 1.9]).unwrap().verdict(),
            Verdict::Holds
        );
        assert_eq!(
            seeded(&[-2.70, -1.34, -1.30, -2.0, -1.9])
                .unwrap()
                .verdict(),
            Verdict::Reversed
        );
        assert_eq!(seeded(&[3.0]).unwrap().verdict(), Verdict::TooFewSeeds);
    }

    #[test]
    fn only_seeds_both_arms_have_are_paired() {
        let a = [(0, 1.0), (1, 2.0), (2, 3.0)];
        let b = [(2, 1.0), (0, 0.0)];
        let paired = Paired::by_seed(&a, &b).unwrap();
        assert_eq!(paired.differences, vec![(0, 1.0), (2, 2.0)]);
        assert!(Paired::by_seed(&a, &[]).is_none());
    }

    #[test]
    fn a_difference_of_differences_is_paired_by_seed_id() {
        // The same differences, listed in another order, with a seed the other lacks.
        let moco = Paired::of(vec![(2, 6.0), (0, 4.0), (1, 5.0), (7, 9.0)]).unwrap();
        let ce = seeded(&[-1.0, 0.0, 1.0]).unwrap();
        let both = moco.minus(&ce).unwrap();
        assert_eq!(both.differences, vec![(2, 5.0), (0, 5.0), (1, 5.0)]);
        assert_eq!(both.half_width, 0.0);
    }

    #[test]
    fn a_difference_of_differences_is_paired_too() {
        let moco = seeded(&[4.0, 5.0, 6.0]).unwrap();
        let ce = seeded(&[-1.0, 0.0, 1.0]).unwrap();
        let both = moco.minus(&ce).unwrap();
        assert_eq!(both.differences, vec![(0, 5.0), (1, 5.0), (2, 5.0)]);
        assert_eq!(both.half_width, 0.0);
        assert_eq!(both.verdict(), Verdict::Holds);
        assert_eq!(moco.negated().mean, -5.0);
    }
}
