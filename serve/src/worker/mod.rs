//! One inference worker per model: one queue, and one thread per instance, each owning a
//! [`Runtime`] copy of the model (it runs one call at a time), like
//! Triton's instance groups. Each thread batches requests dynamically — it takes the first
//! waiting image, then whatever else arrives within `max_delay`, up to `max_batch`, and runs them
//! as one call — so with several instances one batch is prepared while another runs.
//!
//! On the CPU a batch goes in as a new tensor of exactly its size. On a CUDA device two things
//! that cost GPU throughput are avoided (docs/gpu-bench.md):
//! - every new input shape starts cuDNN's exhaustive algorithm search again, and dynamic batching
//!   produces every size up to `max_batch`. Batches are therefore padded to a few bucket sizes
//!   (powers of two, and `max_batch`), each run once at start-up so the searches happen before
//!   the first request;
//! - a pageable host tensor is copied to the device synchronously through a bounce buffer. Each
//!   bucket instead has a page-locked staging tensor bound to the input (I/O binding), and the
//!   output is bound to page-locked memory too.
//!
//! If the bound path fails during the start-up runs, the worker logs why and uses the plain
//! path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use exemplar_inference::InputValues;
use tokio::sync::oneshot;

use crate::metrics::{Execution, Failure, Metrics};
use crate::runtime::{Outputs, Placement, Runtime};

/// The batch sizes a CUDA worker runs: powers of two below `max_batch`, and `max_batch`.
pub fn buckets(max_batch: usize) -> Vec<usize> {
    let max_batch = max_batch.max(1);
    let mut sizes: Vec<usize> = (0..)
        .map(|p| 1usize << p)
        .take_while(|&n| n < max_batch)
        .collect();
    sizes.push(max_batch);
    sizes
}

/// How requests are grouped.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    pub max_batch: usize,
    pub max_delay: Duration,
    /// Images that may wait for the worker; beyond this requests are refused (503).
    pub queue: usize,
}

/// One image's network input and where its outputs go.
struct Job {
    input: InputValues,
    reply: oneshot::Sender<Result<Outputs, String>>,
    queued: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the model's queue is full")]
    Full,
    #[error("the model's worker has stopped")]
    Stopped,
}

pub struct Worker {
    sender: Sender<Job>,
    name: String,
    metrics: Arc<Metrics>,
}

impl Worker {
    /// Starts one thread per runtime of `instances` (the model's instances, on `placement`),
    /// all taking images from one queue. On CUDA the bucket sizes are run once before this
    /// returns.
    pub fn spawn(
        name: &str,
        instances: Vec<Box<dyn Runtime>>,
        placement: Placement,
        options: BatchOptions,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = bounded(options.queue.max(1));
        for (instance, mut runtime) in instances.into_iter().enumerate() {
            if let Placement::Cuda(_) = placement {
                let started = Instant::now();
                let sizes = buckets(options.max_batch);
                match runtime.prepare(&sizes) {
                    Ok(()) => tracing::info!(
                        model = name,
                        batch_sizes = ?sizes,
                        device = %placement,
                        seconds = started.elapsed().as_secs_f64(),
                        "batch sizes ready"
                    ),
                    Err(e) => tracing::warn!(
                        model = name,
                        error = %e,
                        "pinned I/O binding failed; using plain calls"
                    ),
                }
            }
            let (model, metrics, receiver) =
                (name.to_string(), Arc::clone(&metrics), receiver.clone());
            std::thread::Builder::new()
                .name(format!("model-{name}-{instance}"))
                .spawn(move || {
                    run(runtime, options, receiver, |report| match report {
                        Report::Ran(execution) => metrics.execution(&model, &execution),
                        Report::Canceled(images) => {
                            metrics.failure(&model, Failure::Canceled, images)
                        }
                    })
                })?;
        }
        Ok(Self {
            sender,
            name: name.to_string(),
            metrics,
        })
    }

    /// Queues one image (CHW values of the model's input datatype); the receiver yields its
    /// output.
    pub fn submit(&self, input: InputValues) -> Result<Pending, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let queued = Instant::now();
        self.sender
            .try_send(Job {
                input,
                reply,
                queued,
            })
            .map_err(|e| match e {
                TrySendError::Full(_) => {
                    self.metrics.failure(&self.name, Failure::Rejected, 1);
                    SubmitError::Full
                }
                TrySendError::Disconnected(_) => SubmitError::Stopped,
            })?;
        Ok(Pending(answer))
    }

    /// Queues one image and waits for its outputs.
    pub async fn infer(&self, input: InputValues) -> Result<Result<Outputs, String>, SubmitError> {
        self.submit(input)?.wait().await
    }
}

/// An image submitted to a worker, not answered yet.
pub struct Pending(oneshot::Receiver<Result<Outputs, String>>);

impl Pending {
    pub async fn wait(self) -> Result<Result<Outputs, String>, SubmitError> {
        self.0.await.map_err(|_| SubmitError::Stopped)
    }
}

/// What a worker reports after each batch it took from the queue.
enum Report<'a> {
    /// It ran the batch's images.
    Ran(Execution<'a>),
    /// This many images of it were dropped, their clients gone.
    Canceled(u64),
}

fn run(
    mut runtime: Box<dyn Runtime>,
    options: BatchOptions,
    receiver: Receiver<Job>,
    record: impl Fn(Report),
) {
    // Ends when every sender is gone (the server shut down).
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + options.max_delay;
        while jobs.len() < options.max_batch.max(1) {
            match receiver.recv_deadline(deadline) {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A client that went away (closed connection, timed out) no longer waits for its
        // answer: its image is not computed, so it cannot hold up the clients still waiting.
        let taken = jobs.len();
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.len() < taken {
            record(Report::Canceled((taken - jobs.len()) as u64));
        }
        if jobs.is_empty() {
            continue;
        }
        let started = Instant::now();
        let waits: Vec<Duration> = jobs.iter().map(|j| started - j.queued).collect();
        let mut inputs = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            inputs.push(job.input);
            replies.push(job.reply);
        }
        let result = runtime.infer(&inputs);
        record(Report::Ran(Execution {
            waits: &waits,
            compute: started.elapsed(),
            failed: result.is_err(),
        }));
        match result {
            Ok(outputs) => {
                for (output, reply) in outputs.into_iter().zip(replies) {
                    let _ = reply.send(Ok(output));
                }
            }
            Err(message) => {
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_then_the_largest_batch() {
        assert_eq!(buckets(1), vec![1]);
        assert_eq!(buckets(8), vec![1, 2, 4, 8]);
        assert_eq!(buckets(12), vec![1, 2, 4, 8, 12]);
        assert_eq!(buckets(0), vec![1]);
    }
}
