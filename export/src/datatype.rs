//! The graph's input datatype (`export --input-datatype`). burn-onnx exports a network that
//! takes normalised FP32 pixels; a UINT8 or FP16 export puts the conversion in front of it,
//! inside the graph, so a client sends a quarter or half of the bytes and the network is the
//! same:
//!
//! - UINT8 (pixels `0..=255`): `Cast` to FP32, then `Mul` by `1 / (255 · std)` and `Add`
//!   `-mean / std` per channel, which is `(v / 255 - mean) / std`;
//! - FP16 (normalised pixels): `Cast` to FP32.

use exemplar_inference::{InputDatatype, Normalization};
use onnx_ir::ModelProto;
use protobuf::Message;

use crate::ExportError;

/// ONNX's element type codes (`TensorProto.DataType`).
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const FLOAT16: i32 = 10;

/// `onnx` with its graph input `input` taking `datatype`: for FP32 the graph is returned as it
/// is; otherwise the input keeps its name and shape, changes its element type, and feeds the
/// conversion nodes whose output the network now reads.
pub fn typed_input(
    onnx: &[u8],
    input: &str,
    datatype: InputDatatype,
    normalization: &Normalization,
) -> Result<Vec<u8>, ExportError> {
    if datatype == InputDatatype::Fp32 {
        return Ok(onnx.to_vec());
    }
    let invalid =
        |e: protobuf::Error| ExportError::Onnx(format!("cannot make the input {datatype}: {e}"));
    let refuse = |why: String| ExportError::Onnx(format!("cannot make {input} {datatype}: {why}"));
    let mut model = ModelProto::parse_from_bytes(onnx).map_err(invalid)?;
    let graph = model.graph.mut_or_insert_default();
    let Some(graph_input) = graph.input.iter_mut().find(|i| i.name == input) else {
        return Err(refuse("the graph has no such input".into()));
    };
    let tensor_type = graph_input.type_.mut_or_insert_default().mut_tensor_type();
    if tensor_type.elem_type != FLOAT {
        return Err(refuse(format!(
            "it has element type {}, not FP32",
            tensor_type.elem_type
        )));
    }
    tensor_type.elem_type = match datatype {
        InputDatatype::Uint8 => UINT8,
        _ => FLOAT16,
    };
    // The network's first nodes read `normalized`, which the conversion writes.
    let normalized = format!("{input}_normalized");
    let (widened, scaled) = (format!("{input}_fp32"), format!("{input}_scaled"));
    let (scale, shift) = (format!("{input}_scale"), format!("{input}_shift"));
    let taken = graph
        .node
        .iter()
        .flat_map(|node| node.input.iter().chain(&node.output))
        .chain(graph.initializer.iter().map(|t| &t.name))
        .any(|name| [&normalized, &widened, &scaled, &scale, &shift].contains(&name));
    if taken {
        return Err(refuse("the names of its conversion are taken".into()));
    }
    for node in &mut graph.node {
        for name in node.input.iter_mut().filter(|name| *name == input) {
            *name = normalized.clone();
        }
    }
    let mut cast_to = onnx_ir::AttributeProto::new();
    cast_to.name = "to".into();
    cast_to.type_ = onnx_ir::AttributeType::INT.into();
    cast_to.i = FLOAT as i64;
    let mut nodes = Vec::new();
    match datatype {
        InputDatatype::Uint8 => {
            nodes.push(node("Cast", &[input], &widened, Some(cast_to)));
            let std = normalization.std;
            let mean = normalization.mean;
            graph
                .initializer
                .push(per_channel(&scale, std.map(|s| 1.0 / (255.0 * s))));
            graph
                .initializer
                .push(per_channel(&shift, [0, 1, 2].map(|c| -mean[c] / std[c])));
            nodes.push(node("Mul", &[&widened, &scale], &scaled, None));
            nodes.push(node("Add", &[&scaled, &shift], &normalized, None));
        }
        _ => nodes.push(node("Cast", &[input], &normalized, Some(cast_to))),
    }
    // Nodes are listed in an order where each one's inputs come first.
    nodes.append(&mut graph.node);
    graph.node = nodes;
    model.write_to_bytes().map_err(invalid)
}

/// `op(inputs) -> output`, named after its output.
fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Option<onnx_ir::AttributeProto>,
) -> onnx_ir::NodeProto {
    let mut node = onnx_ir::NodeProto::new();
    node.name = format!("{output}_{}", op.to_lowercase());
    node.op_type = op.into();
    node.input = inputs.iter().map(|i| i.to_string()).collect();
    node.output = vec![output.to_string()];
    node.attribute.extend(attribute);
    node
}

/// A `[1, 3, 1, 1]` FP32 constant that broadcasts over `[batch, 3, height, width]`.
fn per_channel(name: &str, values: [f32; 3]) -> onnx_ir::TensorProto {
    let mut tensor = onnx_ir::TensorProto::new();
    tensor.name = name.into();
    tensor.data_type = FLOAT;
    tensor.dims = vec![1, 3, 1, 1];
    tensor.float_data = values.to_vec();
    tensor
}

/// The element type of the graph input `input`, as an [`InputDatatype`] (`None` for another
/// type or no such input).
pub fn input_datatype(onnx: &[u8], input: &str) -> Option<InputDatatype> {
    let model = ModelProto::parse_from_bytes(onnx).ok()?;
    let graph_input = model.graph.input.iter().find(|i| i.name == input)?;
    match graph_input.type_.tensor_type().elem_type {
        FLOAT => Some(InputDatatype::Fp32),
        FLOAT16 => Some(InputDatatype::Fp16),
        UINT8 => Some(InputDatatype::Uint8),
        _ => None,
    }
}
