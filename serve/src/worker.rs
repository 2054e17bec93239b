//! One inference worker per model: a thread that owns the model's ONNX Runtime session (a
//! session runs one call at a time; DESIGN.md) and batches requests dynamically — it takes the
//! first waiting image, then whatever else arrives within `max_delay`, up to `max_batch`, and
//! runs them as one call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// How requests are grouped.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    pub max_batch: usize,
    pub max_delay: Duration,
    /// Images that may wait for the worker; beyond this requests are refused (503).
    pub queue: usize,
}

/// One image's network input and where its output goes.
struct Job {
    input: Vec<f32>,
    reply: oneshot::Sender<Result<Output, String>>,
    queued: Instant,
}

/// One image's output: values and shape (without the batch axis).
#[derive(Debug, Clone)]
pub struct Output {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
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
}

impl Worker {
    /// Starts the worker thread for `session`, whose input `input_name` takes
    /// `[batch, 3, height, width]` and whose first output is read.
    pub fn spawn(
        name: &str,
        session: Session,
        input_name: String,
        input_dims: [usize; 3],
        options: BatchOptions,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = bounded(options.queue.max(1));
        let model = name.to_string();
        std::thread::Builder::new()
            .name(format!("model-{name}"))
            .spawn(move || {
                run(
                    session,
                    input_name,
                    input_dims,
                    options,
                    receiver,
                    |waits| metrics.batch(&model, waits),
                )
            })?;
        Ok(Self { sender })
    }

    /// Queues one image (CHW floats); the receiver yields its output.
    pub fn submit(&self, input: Vec<f32>) -> Result<Pending, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let queued = Instant::now();
        self.sender
            .try_send(Job {
                input,
                reply,
                queued,
            })
            .map_err(|e| match e {
                TrySendError::Full(_) => SubmitError::Full,
                TrySendError::Disconnected(_) => SubmitError::Stopped,
            })?;
        Ok(Pending(answer))
    }

    /// Queues one image and waits for its output.
    pub async fn infer(&self, input: Vec<f32>) -> Result<Result<Output, String>, SubmitError> {
        self.submit(input)?.wait().await
    }
}

/// An image submitted to a worker, not answered yet.
pub struct Pending(oneshot::Receiver<Result<Output, String>>);

impl Pending {
    pub async fn wait(self) -> Result<Result<Output, String>, SubmitError> {
        self.0.await.map_err(|_| SubmitError::Stopped)
    }
}

fn run(
    mut session: Session,
    input_name: String,
    [channels, height, width]: [usize; 3],
    options: BatchOptions,
    receiver: Receiver<Job>,
    record: impl Fn(&[Duration]),
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
        let n = jobs.len();
        let started = Instant::now();
        let waits: Vec<Duration> = jobs.iter().map(|j| started - j.queued).collect();
        record(&waits);
        let mut batch = Vec::with_capacity(n * channels * height * width);
        let mut replies = Vec::with_capacity(n);
        for job in jobs {
            batch.extend(job.input);
            replies.push(job.reply);
        }
        let result = infer(
            &mut session,
            &input_name,
            [n, channels, height, width],
            batch,
        );
        match result {
            Ok((values, shape)) => {
                let per_image = values.len() / n;
                for (i, reply) in replies.into_iter().enumerate() {
                    let _ = reply.send(Ok(Output {
                        values: values[i * per_image..(i + 1) * per_image].to_vec(),
                        shape: shape[1..].to_vec(),
                    }));
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

fn infer(
    session: &mut Session,
    input_name: &str,
    shape: [usize; 4],
    batch: Vec<f32>,
) -> Result<(Vec<f32>, Vec<usize>), String> {
    let tensor = OrtTensor::from_array((shape, batch)).map_err(|e| e.to_string())?;
    let outputs = session
        .run(ort::inputs![input_name => tensor])
        .map_err(|e| e.to_string())?;
    let (out_shape, values) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(|e| e.to_string())?;
    Ok((
        values.to_vec(),
        out_shape.iter().map(|&d| d as usize).collect(),
    ))
}
