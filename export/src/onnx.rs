//! burn → ONNX with burn-onnx's exporter: the forward pass is captured twice (batch 1 and
//! batch 2) so the batch axis becomes symbolic, and the weights are embedded.

use burn::tensor::{Device, Distribution, Tensor};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter, OnnxModel};

use crate::ExportError;
use crate::model::Exportable;

/// Name of the symbolic batch axis in the ONNX graph.
pub const BATCH_AXIS: &str = "batch";

/// Exports `model` for `[batch, 3, height, width]` inputs.
pub fn to_onnx(
    model: &Exportable,
    [height, width]: [usize; 2],
    device: &Device,
) -> Result<OnnxModel, ExportError> {
    let sample = |n: usize| {
        Tensor::<4>::random(
            [n, 3, height, width],
            Distribution::Normal(0.0, 1.0),
            device,
        )
    };
    let spec = [InputSpec::new([
        AxisSpec::dynamic(BATCH_AXIS),
        AxisSpec::Static,
        AxisSpec::Static,
        AxisSpec::Static,
    ])];
    let exporter = OnnxExporter::new();
    let result = match model {
        Exportable::Embedding(m) => {
            exporter.export_dynamic(m, sample(1), sample(2), &spec, |m, x| m.forward(x))
        }
        Exportable::Classifier(m) => {
            exporter.export_dynamic(m, sample(1), sample(2), &spec, |m, x| m.forward(x))
        }
        Exportable::Detector(m) => {
            exporter.export_dynamic(m, sample(1), sample(2), &spec, |m, x| m.forward(x))
        }
        Exportable::Segmenter(m) => {
            exporter.export_dynamic(m, sample(1), sample(2), &spec, |m, x| m.forward(x))
        }
        Exportable::Landmarks(m) => {
            exporter.export_dynamic(m, sample(1), sample(2), &spec, |m, x| m.forward(x))
        }
    };
    result.map_err(|e| ExportError::Onnx(e.to_string()))
}

/// burn's own output for `input`: values and shape.
pub fn burn_output(model: &Exportable, input: Tensor<4>) -> (Vec<f32>, Vec<usize>) {
    fn read<const D: usize>(t: Tensor<D>) -> (Vec<f32>, Vec<usize>) {
        let shape = t.dims().to_vec();
        (t.into_data().iter::<f32>().collect(), shape)
    }
    match model {
        Exportable::Embedding(m) => read(m.forward(input)),
        Exportable::Classifier(m) => read(m.forward(input)),
        Exportable::Detector(m) => read(m.forward(input)),
        Exportable::Segmenter(m) => read(m.forward(input)),
        Exportable::Landmarks(m) => read(m.forward(input)),
    }
}
