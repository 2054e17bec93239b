//! Running means over one log interval, and the throughput since it began.

use std::time::Instant;

pub struct Window {
    started: Instant,
    steps: usize,
    loss: f64,
    accuracy: f64,
    images: usize,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            steps: 0,
            loss: 0.0,
            accuracy: 0.0,
            images: 0,
        }
    }

    /// Adds one step's loss, accuracy (0 where the task has none) and batch size.
    pub fn add(&mut self, loss: f64, accuracy: f64, images: usize) {
        self.steps += 1;
        self.loss += loss;
        self.accuracy += accuracy;
        self.images += images;
    }

    pub fn mean_loss(&self) -> f64 {
        self.loss / self.steps.max(1) as f64
    }

    pub fn mean_accuracy(&self) -> f64 {
        self.accuracy / self.steps.max(1) as f64
    }

    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }
}
