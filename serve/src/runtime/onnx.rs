//! ONNX Runtime: a model's sessions (one per instance, with the threading of [`Instances`], on
//! the CPU or a CUDA device), and the two ways batches reach a session: plain calls with a
//! tensor of the batch's size, or (on CUDA) page-locked staging tensors of the worker's bucket
//! sizes bound to the session (crate::worker says why).

use std::path::Path;

use exemplar_inference::runtime::{cuda_provider, environment};
use exemplar_inference::{InputDatatype, InputValues};
use half::f16;
use ort::environment::Environment;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::SessionBuilder;
use ort::session::{IoBinding, Session};
use ort::value::{DynTensor, PrimitiveTensorElementType, Tensor as OrtTensor};

use super::{DeviceChoice, Instances, Loaded, ModelInput, Output, Outputs, Placement, Runtime};

/// What OIP model metadata calls this runtime.
pub const PLATFORM: &str = "onnxruntime_onnx";

/// `graph` (an ONNX file) loaded `instances.count` times on `device`, for a model whose input
/// is `input`. With [`DeviceChoice::Auto`] the CPU is used when CUDA does not load.
pub fn load(
    graph: &Path,
    input: &ModelInput,
    device: DeviceChoice,
    instances: Instances,
) -> anyhow::Result<Loaded> {
    let (first, placement) = session(graph, device, instances)?;
    let pinned = match placement {
        Placement::Cpu => DeviceChoice::Cpu,
        Placement::Cuda(id) => DeviceChoice::Cuda(id),
    };
    let mut sessions = vec![first];
    for _ in 1..instances.count {
        sessions.push(session(graph, pinned, instances)?.0);
    }
    let instances = sessions
        .into_iter()
        .map(|session| {
            Box::new(OnnxModel::new(session, input.clone(), placement)) as Box<dyn Runtime>
        })
        .collect();
    Ok(Loaded {
        instances,
        placement,
    })
}

/// A session builder with `instances`' threading.
fn builder(environment: &'static Environment, instances: Instances) -> ort::Result<SessionBuilder> {
    let mut builder = Session::builder(environment)?
        .with_intra_threads(instances.intra_op_threads)?
        .with_inter_threads(instances.inter_op_threads)?
        .with_intra_op_spinning(instances.spin)?
        .with_inter_op_spinning(instances.spin)?;
    if instances.inter_op_threads > 1 {
        builder = builder.with_parallel_execution(true)?;
    }
    Ok(builder)
}

/// A session for `graph` on `device`; the device it really runs on.
fn session(
    graph: &Path,
    device: DeviceChoice,
    instances: Instances,
) -> anyhow::Result<(Session, Placement)> {
    let environment = environment()?;
    let failed = |e: ort::Error| anyhow::anyhow!("{}: {e}", graph.display());
    let cuda = match device {
        DeviceChoice::Cpu => None,
        DeviceChoice::Auto => Some(0),
        DeviceChoice::Cuda(id) => Some(id),
    };
    if let Some(id) = cuda {
        let provider = cuda_provider(id).build().error_on_failure();
        let attempt = builder(environment, instances)
            .map_err(failed)?
            .with_execution_providers([provider]);
        match attempt {
            Ok(mut builder) => {
                return Ok((
                    builder.commit_from_file(graph).map_err(failed)?,
                    Placement::Cuda(id),
                ));
            }
            Err(e) if device == DeviceChoice::Auto => {
                tracing::warn!(error = %e, "CUDA is not available; running on the CPU");
            }
            Err(e) => anyhow::bail!(
                "the CUDA execution provider did not load: {e} (install it with scripts/install-onnxruntime.sh --cuda)"
            ),
        }
    }
    let session = builder(environment, instances)
        .and_then(|mut b| b.commit_from_file(graph))
        .map_err(failed)?;
    Ok((session, Placement::Cpu))
}

/// One bucket's page-locked input tensor (of the model's input datatype), bound with the
/// output to the session.
pub struct Bound {
    size: usize,
    staging: DynTensor,
    binding: IoBinding,
}

/// A model's session and the way batches reach it.
pub struct OnnxModel {
    session: Session,
    input: ModelInput,
    placement: Placement,
    /// Empty: plain calls with tensors of the batch's own size.
    bound: Vec<Bound>,
}

/// The element types a model input can have, each read from its [`InputValues`] variant.
trait Element: PrimitiveTensorElementType + Copy + std::fmt::Debug + 'static {
    const DATATYPE: InputDatatype;
    fn values(input: &InputValues) -> Option<&[Self]>;
}

impl Element for f32 {
    const DATATYPE: InputDatatype = InputDatatype::Fp32;
    fn values(input: &InputValues) -> Option<&[Self]> {
        match input {
            InputValues::Fp32(v) => Some(v),
            _ => None,
        }
    }
}

impl Element for f16 {
    const DATATYPE: InputDatatype = InputDatatype::Fp16;
    fn values(input: &InputValues) -> Option<&[Self]> {
        match input {
            InputValues::Fp16(v) => Some(v),
            _ => None,
        }
    }
}

impl Element for u8 {
    const DATATYPE: InputDatatype = InputDatatype::Uint8;
    fn values(input: &InputValues) -> Option<&[Self]> {
        match input {
            InputValues::Uint8(v) => Some(v),
            _ => None,
        }
    }
}

/// `input`'s values, or an error when it is not of `T`'s datatype or not one image long.
fn image_of<T: Element>(input: &InputValues, expected: usize) -> Result<&[T], String> {
    let values = T::values(input).ok_or_else(|| {
        format!(
            "an input is {}, the model takes {}",
            input.datatype(),
            T::DATATYPE
        )
    })?;
    if values.len() != expected {
        return Err(format!(
            "an input has {} values, expected {expected}",
            values.len()
        ));
    }
    Ok(values)
}

/// The batch `inputs` as one tensor of `T`, `[n, c, h, w]`.
fn batch_tensor<T: Element>(inputs: &[InputValues], dims: [usize; 3]) -> Result<DynTensor, String> {
    let [c, h, w] = dims;
    let mut batch: Vec<T> = Vec::with_capacity(inputs.len() * c * h * w);
    for input in inputs {
        batch.extend_from_slice(image_of::<T>(input, c * h * w)?);
    }
    let tensor =
        OrtTensor::from_array(([inputs.len(), c, h, w], batch)).map_err(|e| e.to_string())?;
    Ok(tensor.upcast())
}

/// Copies `inputs` into the first images of a bucket's staging tensor of `T`.
fn fill<T: Element>(
    staging: &mut DynTensor,
    inputs: &[InputValues],
    size: usize,
) -> Result<(), String> {
    let (_, slots) = staging
        .try_extract_tensor_mut::<T>()
        .map_err(|e| e.to_string())?;
    let image = slots.len() / size;
    for (slot, input) in slots.chunks_exact_mut(image).zip(inputs) {
        slot.copy_from_slice(image_of::<T>(input, image)?);
    }
    Ok(())
}

/// A page-locked tensor of `T`, `[size, c, h, w]`.
fn staging<T: Element>(
    allocator: &Allocator,
    size: usize,
    [c, h, w]: [usize; 3],
) -> ort::Result<DynTensor> {
    Ok(OrtTensor::<T>::new(allocator, [size, c, h, w])?.upcast())
}

impl Runtime for OnnxModel {
    fn infer(&mut self, inputs: &[InputValues]) -> Result<Vec<Outputs>, String> {
        self.infer_bound(inputs)
    }

    /// On CUDA: page-locked staging tensors of `batch_sizes`; on the CPU nothing is needed.
    fn prepare(&mut self, batch_sizes: &[usize]) -> Result<(), String> {
        match self.placement {
            Placement::Cpu => Ok(()),
            Placement::Cuda(device) => self.bind(device, batch_sizes),
        }
    }
}

impl OnnxModel {
    /// A session of a model whose input is `input`, running on `placement`.
    pub fn new(session: Session, input: ModelInput, placement: Placement) -> Self {
        Self {
            session,
            input,
            placement,
            bound: Vec::new(),
        }
    }

    /// A CPU session of `graph` with ONNX Runtime's default threading.
    pub fn open_on_cpu(graph: &Path, input: ModelInput) -> anyhow::Result<Self> {
        let session = Session::builder(environment()?)
            .and_then(|mut builder| builder.commit_from_file(graph))
            .map_err(|e| anyhow::anyhow!("{}: {e}", graph.display()))?;
        Ok(Self::new(session, input, Placement::Cpu))
    }

    /// The batch sizes bound by [`Self::bind_with`], smallest first.
    pub fn bound_sizes(&self) -> Vec<usize> {
        self.bound.iter().map(|b| b.size).collect()
    }

    /// Switches to padded, I/O-bound batches of `sizes` in memory of `memory(kind)`, and runs
    /// each size once. Leaves the plain path in place on any error.
    pub fn bind_with(
        &mut self,
        sizes: &[usize],
        memory: impl Fn(MemoryType) -> ort::Result<MemoryInfo<'static>>,
    ) -> Result<(), String> {
        let e = |e: ort::Error| e.to_string();
        let outputs: Vec<String> = self
            .session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        if outputs.is_empty() {
            return Err("the model has no outputs".into());
        }
        let allocator =
            Allocator::new(&self.session, memory(MemoryType::CPUInput).map_err(e)?).map_err(e)?;
        let output_memory = memory(MemoryType::CPUOutput).map_err(e)?;
        let dims = self.input.dims;
        let mut bound = Vec::with_capacity(sizes.len());
        for &size in sizes {
            let staging = match self.input.datatype {
                InputDatatype::Fp32 => staging::<f32>(&allocator, size, dims),
                InputDatatype::Fp16 => staging::<f16>(&allocator, size, dims),
                InputDatatype::Uint8 => staging::<u8>(&allocator, size, dims),
            }
            .map_err(e)?;
            let mut binding = self.session.create_binding().map_err(e)?;
            for output in &outputs {
                binding
                    .bind_output_to_device(output, &output_memory)
                    .map_err(e)?;
            }
            bound.push(Bound {
                size,
                staging,
                binding,
            });
        }
        self.bound = bound;
        let image = InputValues::zeros(self.input.datatype, self.input.per_image());
        for &size in sizes {
            if let Err(message) = self.infer_bound(&vec![image.clone(); size]) {
                self.bound.clear();
                return Err(message);
            }
        }
        Ok(())
    }

    /// Page-locked memory of CUDA device `device`.
    pub fn bind(&mut self, device: i32, sizes: &[usize]) -> Result<(), String> {
        self.bind_with(sizes, |kind| {
            MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                device,
                AllocatorType::Device,
                kind,
            )
        })
    }

    /// Runs `inputs` as one batch, padded to the smallest bound size that holds it; a batch
    /// larger than every bound size (or no binding) goes through [`Self::infer_plain`].
    pub fn infer_bound(&mut self, inputs: &[InputValues]) -> Result<Vec<Outputs>, String> {
        let n = inputs.len();
        let e = |e: ort::Error| e.to_string();
        let Some(bound) = self.bound.iter_mut().find(|b| b.size >= n) else {
            return self.infer_plain(inputs);
        };
        match self.input.datatype {
            InputDatatype::Fp32 => fill::<f32>(&mut bound.staging, inputs, bound.size),
            InputDatatype::Fp16 => fill::<f16>(&mut bound.staging, inputs, bound.size),
            InputDatatype::Uint8 => fill::<u8>(&mut bound.staging, inputs, bound.size),
        }?;
        // Padding: whatever the previous batch left there; its outputs are dropped.
        bound
            .binding
            .bind_input(self.input.name.as_str(), &bound.staging)
            .map_err(e)?;
        let outputs = self.session.run_binding(&bound.binding).map_err(e)?;
        per_image(&outputs, n)
    }

    /// Runs `inputs` as one tensor of exactly their number.
    pub fn infer_plain(&mut self, inputs: &[InputValues]) -> Result<Vec<Outputs>, String> {
        let n = inputs.len();
        let dims = self.input.dims;
        let tensor = match self.input.datatype {
            InputDatatype::Fp32 => batch_tensor::<f32>(inputs, dims),
            InputDatatype::Fp16 => batch_tensor::<f16>(inputs, dims),
            InputDatatype::Uint8 => batch_tensor::<u8>(inputs, dims),
        }?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.name.as_str() => tensor])
            .map_err(|e| e.to_string())?;
        per_image(&outputs, n)
    }
}

/// The first `n` images' outputs of a call, every output tensor of each image.
fn per_image(outputs: &ort::session::SessionOutputs, n: usize) -> Result<Vec<Outputs>, String> {
    let mut images: Vec<Outputs> = (0..n).map(|_| Vec::with_capacity(outputs.len())).collect();
    for index in 0..outputs.len() {
        let (shape, values) = outputs[index]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        for (image, output) in images.iter_mut().zip(split(values, shape, n)) {
            image.push(output);
        }
    }
    Ok(images)
}

/// The first `n` images' outputs of a batch output of `shape`.
fn split(values: &[f32], shape: &[i64], n: usize) -> Vec<Output> {
    let per_image = values.len() / (shape.first().copied().unwrap_or(1).max(1) as usize);
    let shape: Vec<usize> = shape[1..].iter().map(|&d| d as usize).collect();
    values
        .chunks_exact(per_image.max(1))
        .take(n)
        .map(|chunk| Output {
            values: chunk.to_vec(),
            shape: shape.clone(),
        })
        .collect()
}
