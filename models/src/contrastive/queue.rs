//! The key queue: the last K keys produced by the key encoder, used as negatives, together with
//! the class label of the image each key came from (the one addition Exemplar makes to MoCo).

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::encoder::l2_normalize;

/// Label of a queue slot that holds no real key yet (the random initial keys) or a key of an
/// unlabelled image. It never equals a class index, so such slots are never masked.
pub const UNLABELLED: i64 = -1;

/// A ring buffer of `[capacity, dim]` L2-normalised keys and their labels.
#[derive(Debug, Clone)]
pub struct KeyQueue {
    keys: Tensor<2>,
    labels: Vec<i64>,
    labels_on_device: Tensor<1, Int>,
    ptr: usize,
}

impl KeyQueue {
    /// A queue of random unit vectors (as MoCo initialises it), every slot unlabelled.
    pub fn random(capacity: usize, dim: usize, device: &Device) -> Self {
        let keys = Tensor::<2>::random([capacity, dim], Distribution::Normal(0.0, 1.0), device);
        Self::from_parts(l2_normalize(keys), vec![UNLABELLED; capacity], 0)
    }

    /// Rebuilds a queue from its saved state (see [`KeyQueue::keys`], [`KeyQueue::labels`],
    /// [`KeyQueue::ptr`]).
    ///
    /// # Panics
    /// If the number of labels differs from the number of keys or `ptr` is out of range; a
    /// checkpoint loader checks both before calling.
    pub fn from_parts(keys: Tensor<2>, labels: Vec<i64>, ptr: usize) -> Self {
        let [capacity, _] = keys.dims();
        assert_eq!(labels.len(), capacity, "one label per queued key");
        assert!(ptr < capacity.max(1), "queue pointer within capacity");
        let labels_on_device = labels_tensor(&labels, &keys.device());
        Self {
            keys,
            labels,
            labels_on_device,
            ptr,
        }
    }

    pub fn capacity(&self) -> usize {
        self.labels.len()
    }

    pub fn dim(&self) -> usize {
        self.keys.dims()[1]
    }

    /// The queued keys, `[capacity, dim]`, detached.
    pub fn keys(&self) -> Tensor<2> {
        self.keys.clone()
    }

    /// The labels of the queued keys, [`UNLABELLED`] for empty slots.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The labels as a device tensor, `[capacity]`.
    pub fn labels_tensor(&self) -> Tensor<1, Int> {
        self.labels_on_device.clone()
    }

    /// Index of the slot the next key goes to (the oldest key).
    pub fn ptr(&self) -> usize {
        self.ptr
    }

    /// Replaces the oldest entries with `keys` (`[n, dim]`) and their `labels`, wrapping around
    /// the end of the buffer. When `n` exceeds the capacity only the last `capacity` keys are kept.
    ///
    /// # Panics
    /// If `labels.len()` differs from the number of keys.
    pub fn enqueue(&mut self, keys: Tensor<2>, labels: &[i64]) {
        let [n, dim] = keys.dims();
        assert_eq!(labels.len(), n, "one label per key");
        let capacity = self.capacity();
        let (keys, labels) = if n > capacity {
            (
                keys.slice([n - capacity..n, 0..dim]),
                &labels[n - capacity..],
            )
        } else {
            (keys, labels)
        };
        let n = labels.len();
        let keys = keys.detach();
        let first = n.min(capacity - self.ptr);
        let mut queue = self.keys.clone().slice_assign(
            [self.ptr..self.ptr + first, 0..dim],
            keys.clone().slice([0..first, 0..dim]),
        );
        if first < n {
            queue = queue.slice_assign([0..n - first, 0..dim], keys.slice([first..n, 0..dim]));
        }
        for (i, &label) in labels.iter().enumerate() {
            self.labels[(self.ptr + i) % capacity] = label;
        }
        self.keys = queue;
        self.labels_on_device = labels_tensor(&self.labels, &self.keys.device());
        self.ptr = (self.ptr + n) % capacity;
    }
}

fn labels_tensor(labels: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[f32], dim: usize, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len() / dim, dim]),
            device,
        )
    }

    #[test]
    fn starts_random_unit_and_unlabelled() {
        let device = Device::flex();
        let queue = KeyQueue::random(16, 8, &device);
        assert!(queue.labels().iter().all(|&l| l == UNLABELLED));
        let norms = queue
            .keys()
            .square()
            .sum_dim(1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5));
    }

    #[test]
    fn enqueue_wraps_around_and_keeps_labels_aligned() {
        let device = Device::flex();
        let mut queue =
            KeyQueue::from_parts(Tensor::zeros([5, 1], &device), vec![UNLABELLED; 5], 0);
        queue.enqueue(rows(&[1.0, 2.0, 3.0], 1, &device), &[1, 2, 3]);
        assert_eq!(queue.ptr(), 3);
        queue.enqueue(rows(&[4.0, 5.0, 6.0], 1, &device), &[4, 5, 6]);
        assert_eq!(queue.ptr(), 1);
        let keys = queue.keys().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(keys, vec![6.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(queue.labels(), &[6, 2, 3, 4, 5]);
        let on_device: Vec<i64> = queue.labels_tensor().into_data().iter::<i64>().collect();
        assert_eq!(on_device, vec![6, 2, 3, 4, 5]);
    }

    #[test]
    fn enqueue_larger_than_capacity_keeps_the_newest() {
        let device = Device::flex();
        let mut queue =
            KeyQueue::from_parts(Tensor::zeros([3, 1], &device), vec![UNLABELLED; 3], 1);
        queue.enqueue(rows(&[1.0, 2.0, 3.0, 4.0], 1, &device), &[1, 2, 3, 4]);
        assert_eq!(queue.ptr(), 1);
        assert_eq!(queue.labels(), &[4, 2, 3]);
        let keys = queue.keys().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(keys, vec![4.0, 2.0, 3.0]);
    }
}
