//! A fixed part of a dataset: `n` samples drawn once with a fixed seed, so a study can hold the
//! data budget constant on a dataset of any size.
//!
//! Drawn at random rather than at evenly spaced indices: datasets whose labels cycle with the
//! index (the built-in scenes) would otherwise give a subset of one class.

use std::sync::Arc;

use super::{DataError, Dataset, Image};

/// Fixed, so that every run and every evaluation of a study sees the same subset.
const SUBSET_SEED: u64 = 0x5eed;

pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// `limit` samples of `inner`, the same ones on every call (in index order); all of them
    /// when it has no more.
    pub fn sample(inner: Arc<dyn Dataset>, limit: usize) -> Self {
        use rand::SeedableRng;
        use rand::seq::index;
        let len = inner.len();
        let mut indices: Vec<usize> = if limit >= len {
            (0..len).collect()
        } else {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SUBSET_SEED);
            index::sample(&mut rng, len, limit).into_vec()
        };
        indices.sort_unstable();
        Self { inner, indices }
    }

    /// The samples of `inner` whose label `keep` accepts, in index order (every sample is read
    /// once for its label).
    pub fn with_labels(
        inner: Arc<dyn Dataset>,
        keep: impl Fn(i64) -> bool,
    ) -> Result<Self, DataError> {
        let mut indices = Vec::new();
        for index in 0..inner.len() {
            if keep(inner.get(index)?.1) {
                indices.push(index);
            }
        }
        Ok(Self { inner, indices })
    }

    /// The indices of `inner` this subset holds, in order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Two disjoint subsets of `first` and `second` samples, drawn from the indices of `inner`
    /// that are not in `excluded` (held-out data for choosing settings: neither part was
    /// trained on). Each gets fewer when too few indices remain.
    pub fn disjoint_outside(
        inner: Arc<dyn Dataset>,
        excluded: &[usize],
        first: usize,
        second: usize,
    ) -> (Self, Self) {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let excluded: std::collections::HashSet<usize> = excluded.iter().copied().collect();
        let mut free: Vec<usize> = (0..inner.len()).filter(|i| !excluded.contains(i)).collect();
        free.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(SUBSET_SEED + 1));
        let rest = free.split_off(first.min(free.len()));
        let mut a = free;
        let mut b: Vec<usize> = rest.into_iter().take(second).collect();
        a.sort_unstable();
        b.sort_unstable();
        (
            Self {
                inner: Arc::clone(&inner),
                indices: a,
            },
            Self { inner, indices: b },
        )
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }

    fn get(&self, index: usize) -> Result<(Image, i64), DataError> {
        self.inner.get(self.indices[index])
    }

    fn describe(&self) -> String {
        format!(
            "{} images drawn from {}",
            self.indices.len(),
            self.inner.describe()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Stream, SyntheticObjects};

    #[test]
    fn a_label_subset_holds_exactly_the_kept_classes() {
        let inner: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 200, 16));
        let base = Subset::with_labels(Arc::clone(&inner), |label| label < 3).unwrap();
        let expected = (0..inner.len())
            .filter(|&i| inner.get(i).unwrap().1 < 3)
            .count();
        assert_eq!(base.len(), expected);
        assert!(base.len() > 0 && base.len() < inner.len());
        assert!((0..base.len()).all(|i| base.get(i).unwrap().1 < 3));
        assert_eq!(base.class_names(), inner.class_names());
    }

    #[test]
    fn a_subset_is_fixed_covers_the_classes_and_keeps_labels() {
        let inner: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 1000, 16));
        let subset = Subset::sample(Arc::clone(&inner), 100);
        assert_eq!(subset.len(), 100);
        assert_eq!(
            subset.indices,
            Subset::sample(Arc::clone(&inner), 100).indices
        );
        assert!(subset.indices.windows(2).all(|w| w[0] < w[1]));
        let i = subset.indices[7];
        assert_eq!(subset.get(7).unwrap().1, inner.get(i).unwrap().1);
        let classes: std::collections::HashSet<i64> = (0..subset.len())
            .map(|i| subset.get(i).unwrap().1)
            .collect();
        assert!(classes.len() > 5, "{classes:?}");
        assert_eq!(Subset::sample(Arc::clone(&inner), 5000).len(), 1000);
        let (a, b) = Subset::disjoint_outside(Arc::clone(&inner), &subset.indices, 300, 200);
        assert_eq!((a.len(), b.len()), (300, 200));
        let seen: std::collections::HashSet<usize> =
            a.indices.iter().chain(&b.indices).copied().collect();
        assert_eq!(seen.len(), 500, "the two parts overlap");
        assert!(subset.indices.iter().all(|i| !seen.contains(i)));
        let (a, b) = Subset::disjoint_outside(inner, &subset.indices, 850, 200);
        assert_eq!((a.len(), b.len()), (850, 50));
    }
}
