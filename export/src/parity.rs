//! The parity check: the exported file, run by ONNX Runtime, must reproduce burn's output.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use exemplar_inference::card::InputSpec;
use exemplar_inference::{InputDatatype, InputValues};
use half::f16;
use ort::session::Session;
use ort::value::{DynTensor, Tensor as OrtTensor};
use serde::Serialize;

use crate::ExportError;
use crate::model::Exportable;
use crate::onnx::burn_output;
use exemplar_inference::runtime::environment;

/// Largest difference allowed, relative to the largest magnitude of burn's output.
pub const TOLERANCE: f32 = 1e-4;

#[derive(Debug, Clone, Serialize)]
pub struct Parity {
    pub batch: usize,
    pub max_abs_diff: f32,
    /// `max_abs_diff` over the largest magnitude of burn's output.
    pub relative: f32,
    /// The graph's input and output names, as ONNX Runtime reports them.
    pub input_name: String,
    pub output_names: Vec<String>,
}

/// burn's answer on a random batch, taken before export: the exporter's capture moves
/// BatchNorm's running statistics (shared state) to its private device, after which the burn
/// module can no longer run.
#[derive(Debug, Clone)]
pub struct Reference {
    /// What ONNX Runtime is fed, in the exported input's datatype.
    pub input: InputValues,
    pub input_shape: [usize; 4],
    pub output: Vec<f32>,
    pub output_shape: Vec<usize>,
}

/// burn's output for a random batch of `batch` images of the card's `input`. FP32 inputs are
/// random normal values; FP16 ones the same rounded to 16 bits, which burn gets widened back;
/// UINT8 ones random pixels, which burn gets normalised as the server's FP32 preprocessing
/// does, `(v / 255 - mean) / std`.
pub fn reference(
    model: &Exportable,
    input: &InputSpec,
    batch: usize,
    device: &Device,
) -> Reference {
    let shape = [batch, 3, input.height, input.width];
    let random = |distribution| -> Vec<f32> {
        Tensor::<4>::random(shape, distribution, device)
            .into_data()
            .iter::<f32>()
            .collect()
    };
    let (fed, network_input) = match input.datatype {
        InputDatatype::Fp32 => {
            let values = random(Distribution::Normal(0.0, 1.0));
            (InputValues::Fp32(values.clone()), values)
        }
        InputDatatype::Fp16 => {
            let halves: Vec<f16> = random(Distribution::Normal(0.0, 1.0))
                .into_iter()
                .map(f16::from_f32)
                .collect();
            let widened = halves.iter().map(|h| h.to_f32()).collect();
            (InputValues::Fp16(halves), widened)
        }
        InputDatatype::Uint8 => {
            let pixels: Vec<u8> = random(Distribution::Uniform(0.0, 256.0))
                .into_iter()
                .map(|v| v.floor().clamp(0.0, 255.0) as u8)
                .collect();
            let plane = input.height * input.width;
            let (mean, std) = (input.normalization.mean, input.normalization.std);
            let normalized = pixels
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let c = (i / plane) % 3;
                    (p as f32 / 255.0 - mean[c]) / std[c]
                })
                .collect();
            (InputValues::Uint8(pixels), normalized)
        }
    };
    let tensor = Tensor::<4>::from_data(TensorData::new(network_input, shape), device);
    let (output, output_shape) = burn_output(model, tensor);
    Reference {
        input: fed,
        input_shape: shape,
        output,
        output_shape,
    }
}

/// The reference input as a tensor of its own datatype.
fn feed(reference: &Reference) -> ort::Result<DynTensor> {
    let shape = reference.input_shape;
    Ok(match &reference.input {
        InputValues::Fp32(v) => OrtTensor::from_array((shape, v.clone()))?.upcast(),
        InputValues::Fp16(v) => OrtTensor::from_array((shape, v.clone()))?.upcast(),
        InputValues::Uint8(v) => OrtTensor::from_array((shape, v.clone()))?.upcast(),
    })
}

/// Runs `onnx` in ONNX Runtime (CPU) on the reference input and compares with burn's output; an
/// error when they differ beyond [`TOLERANCE`].
pub fn check(onnx: &[u8], reference: &Reference) -> Result<Parity, ExportError> {
    let environment = environment()?;
    let ort_error = |e: ort::Error| ExportError::Runtime(e.to_string());
    let mut session = Session::builder(environment)
        .map_err(ort_error)?
        .commit_from_memory(onnx)
        .map_err(ort_error)?;
    let input_name = session.inputs()[0].name().to_string();
    let output_names: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| o.name().to_string())
        .collect();

    let feed = feed(reference).map_err(ort_error)?;
    let outputs = session
        .run(ort::inputs![input_name.as_str() => feed])
        .map_err(ort_error)?;
    let mut parts = Vec::with_capacity(output_names.len());
    for index in 0..output_names.len() {
        let (shape, values) = outputs[index]
            .try_extract_tensor::<f32>()
            .map_err(ort_error)?;
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        parts.push((shape, values));
    }
    let (shape, actual) = join_channels(&parts)?;
    if shape != reference.output_shape {
        return Err(ExportError::Parity(format!(
            "ONNX Runtime returned shape {shape:?}, burn {:?}",
            reference.output_shape
        )));
    }
    let max_abs_diff = reference
        .output
        .iter()
        .zip(actual)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = reference
        .output
        .iter()
        .map(|v| v.abs())
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let relative = max_abs_diff / scale;
    if relative.is_nan() || relative > TOLERANCE {
        return Err(ExportError::Parity(format!(
            "outputs differ by up to {max_abs_diff:e} ({relative:e} of the largest value, above {TOLERANCE:e})"
        )));
    }
    Ok(Parity {
        batch: reference.input_shape[0],
        max_abs_diff,
        relative,
        input_name,
        output_names,
    })
}

/// Outputs split along the channel axis (axis 1), joined back into burn's one output: shape
/// and values.
fn join_channels(parts: &[(Vec<usize>, &[f32])]) -> Result<(Vec<usize>, Vec<f32>), ExportError> {
    let [(first, _), rest @ ..] = parts else {
        return Err(ExportError::Parity("the graph has no outputs".into()));
    };
    let batch = first.first().copied().unwrap_or(1).max(1);
    let mut shape = first.clone();
    for (other, _) in rest {
        if other.len() != first.len() || other[0] != first[0] || other.get(2..) != first.get(2..) {
            return Err(ExportError::Parity(format!(
                "outputs of shapes {first:?} and {other:?} do not join along the channels"
            )));
        }
        shape[1] += other[1];
    }
    let mut joined = Vec::with_capacity(parts.iter().map(|(_, v)| v.len()).sum());
    for image in 0..batch {
        for (_, values) in parts {
            let per_image = values.len() / batch;
            joined.extend_from_slice(&values[image * per_image..(image + 1) * per_image]);
        }
    }
    Ok((shape, joined))
}
