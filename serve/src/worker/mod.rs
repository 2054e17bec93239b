//! One inference worker per model: one queue, and one thread per instance, each owning an ONNX
//! Runtime session of the model (a session runs one call at a time), like
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
use exemplar_inference::{InputDatatype, InputValues};
use ort::session::Session;
use tokio::sync::oneshot;

use crate::metrics::{Execution, Failure, Metrics};

mod runner;

use runner::Runner;
pub use runner::buckets;

/// How requests are grouped.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    pub max_batch: usize,
    pub max_delay: Duration,
    /// Images that may wait for the worker; beyond this requests are refused (503).
    pub queue: usize,
}

/// Where a model's session runs, which decides how batches are handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Cpu,
    /// This CUDA device: bucketed, pinned, I/O-bound batches.
    Cuda(i32),
}

impl std::fmt::Display for Placement {
    /// As logged at start-up and shown in `/v2`: `CPU` or `CUDA:N`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Cpu => f.write_str("CPU"),
            Placement::Cuda(id) => write!(f, "CUDA:{id}"),
        }
    }
}

/// One image's network input and where its outputs go.
struct Job {
    input: InputValues,
    reply: oneshot::Sender<Result<Outputs, String>>,
    queued: Instant,
}

/// A model's input tensor: its name, `[channels, height, width]` and datatype.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub name: String,
    pub dims: [usize; 3],
    pub datatype: InputDatatype,
}

impl ModelInput {
    /// The input a model card describes.
    pub fn of(card: &exemplar_inference::ModelCard) -> Self {
        Self {
            name: card.input.name.clone(),
            dims: [3, card.input.height, card.input.width],
            datatype: card.input.datatype,
        }
    }

    /// Values in one image.
    pub fn per_image(&self) -> usize {
        self.dims.iter().product()
    }
}

/// One image's output tensor: values and shape (without the batch axis).
#[derive(Debug, Clone)]
pub struct Output {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
}

/// One image's output tensors, in the graph's (and the card's) order.
pub type Outputs = Vec<Output>;

impl Output {
    /// Tensors joined along their first axis (the channels): detection's `heatmaps`, `offsets`
    /// and `sizes` back into the `[classes + 4, h, w]` maps its decoding reads. One tensor is
    /// returned as it is; tensors whose other axes differ cannot be joined.
    pub fn join(mut outputs: Outputs) -> Result<Output, String> {
        if outputs.len() == 1 {
            return Ok(outputs.remove(0));
        }
        let first = outputs.first().ok_or("the model returned no outputs")?;
        let mut shape = first.shape.clone();
        for other in &outputs[1..] {
            if other.shape.len() != shape.len() || other.shape.get(1..) != shape.get(1..) {
                return Err(format!(
                    "outputs of shapes {:?} and {:?} do not join along the channels",
                    first.shape, other.shape
                ));
            }
        }
        shape[0] = outputs.iter().map(|o| o.shape[0]).sum();
        let values = outputs.into_iter().flat_map(|o| o.values).collect();
        Ok(Output { values, shape })
    }
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
    /// Starts one thread per session of `sessions` (the model's instances), all taking images
    /// from one queue. The model's input `input` takes `[batch, 3, height, width]` values of
    /// its datatype; every output is read. On CUDA the bucket sizes are run once before this
    /// returns.
    pub fn spawn(
        name: &str,
        sessions: Vec<Session>,
        input: ModelInput,
        placement: Placement,
        options: BatchOptions,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = bounded(options.queue.max(1));
        for (instance, session) in sessions.into_iter().enumerate() {
            let mut runner = Runner::new(session, input.clone());
            if let Placement::Cuda(device) = placement {
                let started = Instant::now();
                let sizes = buckets(options.max_batch);
                match runner.bind(device, &sizes) {
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
                    run(runner, options, receiver, |report| match report {
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
    mut runner: Runner,
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
        let result = runner.infer(&inputs);
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
    use exemplar_train::finetune::classification::ClassificationTask;
    use exemplar_train::finetune::config::FinetuneConfig;
    use exemplar_train::finetune::{self, TaskKind};
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};

    #[test]
    fn buckets_are_powers_of_two_then_the_largest_batch() {
        assert_eq!(buckets(1), vec![1]);
        assert_eq!(buckets(8), vec![1, 2, 4, 8]);
        assert_eq!(buckets(12), vec![1, 2, 4, 8, 12]);
        assert_eq!(buckets(0), vec![1]);
    }

    /// A briefly fine-tuned classifier in `dir/run`, exported into `dir/model`: its folder and
    /// card.
    fn exported(dir: &std::path::Path) -> (std::path::PathBuf, exemplar_inference::ModelCard) {
        let run = dir.join("run");
        let mut config = FinetuneConfig::defaults(TaskKind::Classification);
        config.epochs = 1;
        config.synthetic.train_size = 32;
        config.synthetic.val_size = 8;
        finetune::finetune::<ClassificationTask>(config, &run, false).unwrap();
        export_as(dir, InputDatatype::Fp32)
    }

    /// The run of [`exported`] exported again with an input of `datatype`, into
    /// `dir/model-<datatype>`.
    fn export_as(
        dir: &std::path::Path,
        datatype: InputDatatype,
    ) -> (std::path::PathBuf, exemplar_inference::ModelCard) {
        let model = match datatype {
            InputDatatype::Fp32 => dir.join("model"),
            other => dir.join(format!("model-{other}")),
        };
        let options = exemplar_export::ExportOptions {
            parity_batch: 2,
            input_datatype: datatype,
        };
        exemplar_export::export_with(&dir.join("run"), &model, &options).unwrap();
        let card = exemplar_inference::ModelCard::read(&model.join("model.json")).unwrap();
        (model, card)
    }

    fn open(model: &std::path::Path) -> Session {
        Session::builder(exemplar_inference::runtime::environment().unwrap())
            .unwrap()
            .commit_from_file(model.join("model.onnx"))
            .unwrap()
    }

    /// Images whose clients stopped waiting (the request's future dropped, as when the
    /// connection closes) are taken off the queue without being computed.
    #[test]
    fn images_of_clients_that_left_are_not_computed() {
        let dir = tempfile::tempdir().unwrap();
        let (model, card) = exported(dir.path());
        let input = ModelInput::of(&card);
        let metrics = Arc::new(Metrics::default());
        let options = BatchOptions {
            max_batch: 1,
            max_delay: Duration::ZERO,
            queue: 32,
        };
        let worker = Worker::spawn(
            "m",
            vec![open(&model)],
            input.clone(),
            Placement::Cpu,
            options,
            Arc::clone(&metrics),
        )
        .unwrap();
        let image = InputValues::Fp32(vec![0.25; input.per_image()]);
        // Nineteen clients leave as soon as their image is queued; the twentieth waits.
        for _ in 0..19 {
            drop(worker.submit(image.clone()).unwrap());
        }
        let last = worker.submit(image.clone()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let output = runtime.block_on(last.wait()).unwrap().unwrap();
        assert_eq!(output[0].values.len(), card.class_names.len());
        // Only the waiting client's image ran (the batch-size histogram counts the calls made),
        // give or take one taken in the instant between a submit and its drop.
        let text = metrics.render();
        let calls: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("exemplar_batch_size_count{model=\"m\"} "))
            .unwrap_or_else(|| panic!("{text}"))
            .parse()
            .unwrap();
        assert!(calls <= 2, "{calls} calls for 1 waiting image: {text}");
        let canceled: u64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("exemplar_inference_failure_total{model=\"m\",reason=\"canceled\"} ")
            })
            .unwrap_or_else(|| panic!("{text}"))
            .parse()
            .unwrap();
        assert!(
            canceled >= 18,
            "{canceled} images counted as canceled: {text}"
        );
    }

    /// The bound path (here in plain host memory; on CUDA in page-locked memory) pads a batch to
    /// its bucket and must answer each image exactly as a plain call of the batch does, in each
    /// input datatype; an image of another datatype is an error, not a crash.
    #[test]
    fn padded_bound_batches_answer_like_plain_calls() {
        let dir = tempfile::tempdir().unwrap();
        exported(dir.path());
        for datatype in InputDatatype::ALL {
            padded_bound_batches_in(dir.path(), datatype);
        }
    }

    fn padded_bound_batches_in(dir: &std::path::Path, datatype: InputDatatype) {
        let (model, card) = export_as(dir, datatype);
        let open = || open(&model);
        let input = ModelInput::of(&card);
        let mut plain = Runner::new(open(), input.clone());
        let mut bound = Runner::new(open(), input.clone());
        bound
            .bind_with(&buckets(6), |_| {
                MemoryInfo::new(
                    AllocationDevice::CPU,
                    0,
                    AllocatorType::Device,
                    MemoryType::Default,
                )
            })
            .unwrap();
        assert_eq!(bound.bound.len(), 4, "buckets 1, 2, 4 and 6");
        let image = |k: usize| {
            let pattern = (0..input.per_image()).map(|i| (i * 7 + k * 13) % 17);
            match datatype {
                InputDatatype::Uint8 => InputValues::Uint8(pattern.map(|v| v as u8 * 15).collect()),
                _ => {
                    let values = pattern.map(|v| v as f64 / 17.0 - 0.5).collect::<Vec<_>>();
                    InputValues::from_numbers(datatype, &values).unwrap()
                }
            }
        };
        // 6 then 3: the second batch is padded with what the first left in the staging buffer.
        for n in [6, 3, 1, 5] {
            let inputs: Vec<InputValues> = (0..n).map(|k| image(k + n)).collect();
            let expected = plain.infer_plain(&inputs).unwrap();
            let got = bound.infer(&inputs).unwrap();
            assert_eq!(got.len(), n);
            for (g, e) in got.iter().flatten().zip(expected.iter().flatten()) {
                assert_eq!(g.shape, e.shape);
                for (a, b) in g.values.iter().zip(&e.values) {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{a} vs {b} at batch {n}"
                    );
                }
            }
        }
        // A batch larger than every bucket (not produced by the worker) still gets answered.
        let inputs: Vec<InputValues> = (0..7).map(image).collect();
        assert_eq!(bound.infer(&inputs).unwrap().len(), 7);
        let other = match datatype {
            InputDatatype::Uint8 => InputDatatype::Fp16,
            _ => InputDatatype::Uint8,
        };
        let wrong = [InputValues::zeros(other, input.per_image())];
        let error = bound.infer(&wrong).unwrap_err();
        assert!(
            error.contains(&format!("the model takes {datatype}")),
            "{error}"
        );
        let error = plain.infer_plain(&wrong).unwrap_err();
        assert!(
            error.contains(&format!("the model takes {datatype}")),
            "{error}"
        );
    }
}
