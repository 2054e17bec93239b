//! burn → ONNX with burn-onnx's exporter: the forward pass is captured twice (batch 1 and
//! batch 2) so the batch axis becomes symbolic, and the weights are embedded.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter, OnnxModel};
use exemplar_models::NetworkVisitor;

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
    let onnx = model.visit(Capture {
        size: [height, width],
        device,
    })?;
    Ok(onnx)
}

/// The graph capture of a network's forward pass, at batch 1 and batch 2.
struct Capture<'a> {
    size: [usize; 2],
    device: &'a Device,
}

impl NetworkVisitor for Capture<'_> {
    type Output = Result<OnnxModel, burn_onnx::export::ExportError>;

    fn visit<M: Module, const D: usize>(
        self,
        network: &M,
        forward: fn(&M, Tensor<4>) -> Tensor<D>,
    ) -> Self::Output {
        let [height, width] = self.size;
        let sample = |n: usize| {
            Tensor::<4>::random(
                [n, 3, height, width],
                Distribution::Normal(0.0, 1.0),
                self.device,
            )
        };
        let spec = [InputSpec::new([
            AxisSpec::dynamic(BATCH_AXIS),
            AxisSpec::Static,
            AxisSpec::Static,
            AxisSpec::Static,
        ])];
        OnnxExporter::new().export_dynamic(network, sample(1), sample(2), &spec, forward)
    }
}

/// burn's own output for `input`: values and shape.
pub fn burn_output(model: &Exportable, input: Tensor<4>) -> (Vec<f32>, Vec<usize>) {
    model.visit(Run(input))
}

/// A network's forward pass on one input, read back.
struct Run(Tensor<4>);

impl NetworkVisitor for Run {
    type Output = (Vec<f32>, Vec<usize>);

    fn visit<M: Module, const D: usize>(
        self,
        network: &M,
        forward: fn(&M, Tensor<4>) -> Tensor<D>,
    ) -> Self::Output {
        let output = forward(network, self.0);
        let shape = output.dims().to_vec();
        (output.into_data().iter::<f32>().collect(), shape)
    }
}
