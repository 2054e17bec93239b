//! A model's ONNX Runtime session and the two ways batches reach it: plain calls with a tensor
//! of the batch's size, or (on CUDA) page-locked staging tensors of a few bucket sizes bound to
//! the session (the module above says why).

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::Tensor as OrtTensor;

use super::{Output, Outputs};

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

/// One bucket's page-locked input tensor, bound with the output to the session.
pub struct Bound {
    size: usize,
    staging: OrtTensor<f32>,
    binding: IoBinding,
}

/// A model's session and the way batches reach it.
pub struct Runner {
    session: Session,
    input_name: String,
    /// `[channels, height, width]`.
    dims: [usize; 3],
    /// Empty: plain calls with tensors of the batch's own size.
    pub(super) bound: Vec<Bound>,
}

impl Runner {
    pub fn new(session: Session, input_name: String, dims: [usize; 3]) -> Self {
        Self {
            session,
            input_name,
            dims,
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
        let [c, h, w] = self.dims;
        let mut bound = Vec::with_capacity(sizes.len());
        for &size in sizes {
            let staging = OrtTensor::<f32>::new(&allocator, [size, c, h, w]).map_err(e)?;
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
        let image = vec![0.0; c * h * w];
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

    /// Runs `inputs` (CHW images) as one batch; each input's outputs.
    pub fn infer(&mut self, inputs: &[Vec<f32>]) -> Result<Vec<Outputs>, String> {
        let n = inputs.len();
        let e = |e: ort::Error| e.to_string();
        let Some(bound) = self.bound.iter_mut().find(|b| b.size >= n) else {
            return self.infer_plain(inputs);
        };
        let (_, staging) = bound.staging.extract_tensor_mut();
        let image = staging.len() / bound.size;
        for (slot, input) in staging.chunks_exact_mut(image).zip(inputs) {
            if input.len() != image {
                return Err(format!(
                    "an input has {} values, expected {image}",
                    input.len()
                ));
            }
            slot.copy_from_slice(input);
        }
        // Padding: whatever the previous batch left there; its outputs are dropped.
        bound
            .binding
            .bind_input(self.input_name.as_str(), &bound.staging)
            .map_err(e)?;
        let outputs = self.session.run_binding(&bound.binding).map_err(e)?;
        per_image(&outputs, n)
    }

    pub(super) fn infer_plain(&mut self, inputs: &[Vec<f32>]) -> Result<Vec<Outputs>, String> {
        let n = inputs.len();
        let [c, h, w] = self.dims;
        let batch: Vec<f32> = inputs.concat();
        let tensor = OrtTensor::from_array(([n, c, h, w], batch)).map_err(|e| e.to_string())?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
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
