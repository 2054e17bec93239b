//! Where a model's batches are computed: one trait, [`Runtime`], with its implementations
//! beside it. ONNX Runtime ([`onnx`]) is the one there is; a second (TensorRT, OpenVINO, burn
//! itself) would be a module here that the registry loads instead. Nothing outside this folder
//! names ONNX Runtime's types: the workers see `Box<dyn Runtime>`, the routes see [`Output`]s.

pub mod onnx;

pub use exemplar_inference::served::Output;
use exemplar_inference::{InputDatatype, InputValues, ModelCard};

/// One loaded copy of a model, owned by one worker thread: it runs one batch at a time.
pub trait Runtime: Send {
    /// Runs `inputs` (CHW images of the model's input datatype) as one batch; each image's
    /// outputs, in the card's order. An image of another datatype is an error, not a crash.
    fn infer(&mut self, inputs: &[InputValues]) -> Result<Vec<Outputs>, String>;

    /// Readies the batch sizes the worker will pad to (on a GPU: page-locked buffers bound to
    /// the model) and runs each once. On error the runtime keeps answering as before.
    fn prepare(&mut self, batch_sizes: &[usize]) -> Result<(), String>;
}

/// A model loaded for its worker: one [`Runtime`] per instance, and where they run.
pub struct Loaded {
    pub instances: Vec<Box<dyn Runtime>>,
    pub placement: Placement,
}

/// Where to run the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device 0 when the CUDA execution provider loads, the CPU otherwise.
    Auto,
    Cpu,
    /// This CUDA device, or an error.
    Cuda(i32),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    format!("unknown device '{s}' (expected auto, cpu, cuda or cuda:N)")
                }),
        }
    }
}

/// How many sessions each model gets, and the threads each session computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instances {
    /// Sessions per model, each on its own thread, sharing the model's queue.
    pub count: usize,
    /// Threads one session splits an operator over (ONNX Runtime's intra-op pool).
    pub intra_op_threads: usize,
    /// Threads running independent operators side by side; above 1 this turns on ONNX
    /// Runtime's parallel execution mode.
    pub inter_op_threads: usize,
    /// Let the intra-op threads busy-wait between operators. Off by default: on a few cores
    /// the waiting threads take the CPU that decoding and HTTP need (docs/serving-speed.md).
    pub spin: bool,
}

impl Instances {
    /// `count` sessions sharing the machine's cores between them.
    pub fn for_cores(count: usize, cores: usize) -> Self {
        let count = count.max(1);
        Self {
            count,
            intra_op_threads: (cores / count).max(1),
            inter_op_threads: 1,
            spin: false,
        }
    }
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

/// A model's input tensor: its name, `[channels, height, width]` and datatype.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub name: String,
    pub dims: [usize; 3],
    pub datatype: InputDatatype,
}

impl ModelInput {
    /// The input a model card describes.
    pub fn of(card: &ModelCard) -> Self {
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

/// One image's output tensors, in the graph's (and the card's) order.
pub type Outputs = Vec<Output>;
