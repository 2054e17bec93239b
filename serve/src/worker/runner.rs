//! A model's ONNX Runtime session and the two ways batches reach it: plain calls with a tensor
//! of the batch's size, or (on CUDA) page-locked staging tensors of a few bucket sizes bound to
//! the session (the module above says why).

use exemplar_inference::{InputDatatype, InputValues};
use half::f16;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::{DynTensor, PrimitiveTensorElementType, Tensor as OrtTensor};

use super::{ModelInput, Output, Outputs};

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

/// One bucket's page-locked input tensor (of the model's input datatype), bound with the
/// output to the session.
pub struct Bound {
    size: usize,
    staging: DynTensor,
    binding: IoBinding,
}

/// A model's session and the way batches reach it.
pub struct Runner {
    session: Session,
    input: ModelInput,
    /// Empty: plain calls with tensors of the batch's own size.
    pub(super) bound: Vec<Bound>,
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

impl Runner {
    pub fn new(session: Session, input: ModelInput) -> Self {
        Self {
            session,
            input,
            bound: Vec::new(),
        }
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
            if let Err(message) = self.infer(&vec![image.clone(); size]) {
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

    /// Runs `inputs` (CHW images of the model's input datatype) as one batch; each input's
    /// outputs.
    pub fn infer(&mut self, inputs: &[InputValues]) -> Result<Vec<Outputs>, String> {
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

    pub(super) fn infer_plain(&mut self, inputs: &[InputValues]) -> Result<Vec<Outputs>, String> {
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
