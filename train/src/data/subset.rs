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
    use crate::data::synthetic::{Stream, SyntheticObjects};

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
        assert_eq!(Subset::sample(inner, 5000).len(), 1000);
    }
}
