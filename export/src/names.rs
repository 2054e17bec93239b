//! The graph's tensor names. burn-onnx names every tensor by its capture order (`tensor_120`
//! in, `tensor_201` out); the export renames the graph's input and output to the model card's
//! names (`images` in; `embedding`, `logits` or `points` out; a detector's one output split into
//! `heatmaps`, `offsets` and `sizes`), which clients of the Open Inference Protocol feed and read
//! by.

use onnx_ir::ModelProto;
use protobuf::Message;

use crate::ExportError;

/// `onnx` with its one graph input renamed to `input` and its one graph output to `output`,
/// everywhere the nodes and value infos refer to them.
pub fn rename_io(onnx: &[u8], input: &str, output: &str) -> Result<Vec<u8>, ExportError> {
    let invalid = |e: protobuf::Error| ExportError::Onnx(format!("cannot rename tensors: {e}"));
    let mut model = ModelProto::parse_from_bytes(onnx).map_err(invalid)?;
    let graph = model.graph.mut_or_insert_default();
    let initializers: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let mut inputs: Vec<&mut onnx_ir::ValueInfoProto> = graph
        .input
        .iter_mut()
        .filter(|i| !initializers.contains(&i.name))
        .collect();
    let ([graph_input], [graph_output]) = (inputs.as_mut_slice(), graph.output.as_mut_slice())
    else {
        return Err(ExportError::Onnx(
            "cannot rename tensors: the graph does not have exactly one input and one output"
                .into(),
        ));
    };
    let (old_input, old_output) = (graph_input.name.clone(), graph_output.name.clone());
    let taken = graph
        .node
        .iter()
        .flat_map(|node| node.input.iter().chain(&node.output))
        .chain(&initializers)
        .any(|name| {
            (name == input && *name != old_input) || (name == output && *name != old_output)
        });
    if taken || input == output {
        return Err(ExportError::Onnx(format!(
            "cannot rename the graph's tensors to {input} → {output}: the names are taken"
        )));
    }
    let old_input = std::mem::replace(&mut graph_input.name, input.to_string());
    graph_output.name = output.to_string();
    let rename = |name: &mut String| {
        if *name == old_input {
            *name = input.to_string();
        } else if *name == old_output {
            *name = output.to_string();
        }
    };
    for node in &mut graph.node {
        node.input.iter_mut().for_each(rename);
        node.output.iter_mut().for_each(rename);
    }
    for info in &mut graph.value_info {
        rename(&mut info.name);
    }
    model.write_to_bytes().map_err(invalid)
}

/// `onnx` with its one graph output `joined` split along the channel axis (axis 1) into the
/// graph outputs `parts`, each `(name, channels)` in order: detection's `[batch, classes + 4,
/// h, w]` maps become `heatmaps`, `offsets` and `sizes`. `joined` stays as the Split node's
/// input, inside the graph. The channel counts must add up to `joined`'s.
pub fn split_output(
    onnx: &[u8],
    joined: &str,
    parts: &[(&str, usize)],
) -> Result<Vec<u8>, ExportError> {
    let invalid = |e: protobuf::Error| ExportError::Onnx(format!("cannot split the output: {e}"));
    let refuse = |why: String| ExportError::Onnx(format!("cannot split {joined}: {why}"));
    let mut model = ModelProto::parse_from_bytes(onnx).map_err(invalid)?;
    let graph = model.graph.mut_or_insert_default();
    let [output] = graph.output.as_slice() else {
        return Err(refuse("the graph does not have exactly one output".into()));
    };
    if output.name != joined {
        return Err(refuse(format!("the graph's output is {}", output.name)));
    }
    let dims = &output.type_.tensor_type().shape.dim;
    let channels = match dims.get(1) {
        Some(dim) if dims.len() >= 2 && dim.has_dim_value() => dim.dim_value() as usize,
        _ => return Err(refuse("its channel axis has no fixed size".into())),
    };
    let total: usize = parts.iter().map(|(_, c)| c).sum();
    if total != channels || parts.iter().any(|(_, c)| *c == 0) {
        return Err(refuse(format!(
            "it has {channels} channels, the parts {parts:?} add up to {total}"
        )));
    }
    let sizes_name = format!("{joined}_split_sizes");
    let taken = graph
        .node
        .iter()
        .flat_map(|node| node.input.iter().chain(&node.output))
        .chain(graph.initializer.iter().map(|t| &t.name))
        .any(|name| *name == sizes_name || parts.iter().any(|(part, _)| part == name));
    if taken {
        return Err(refuse(format!("one of the names {parts:?} is taken")));
    }
    let template = output.clone();
    graph.output = parts
        .iter()
        .map(|&(name, channels)| {
            let mut part = template.clone();
            part.name = name.to_string();
            part.type_
                .mut_or_insert_default()
                .mut_tensor_type()
                .shape
                .mut_or_insert_default()
                .dim[1]
                .set_dim_value(channels as i64);
            part
        })
        .collect();
    let mut sizes = onnx_ir::TensorProto::new();
    sizes.name = sizes_name.clone();
    sizes.data_type = 7; // INT64
    sizes.dims = vec![parts.len() as i64];
    sizes.int64_data = parts.iter().map(|&(_, c)| c as i64).collect();
    graph.initializer.push(sizes);
    let mut axis = onnx_ir::AttributeProto::new();
    axis.name = "axis".into();
    axis.type_ = onnx_ir::AttributeType::INT.into();
    axis.i = 1;
    let mut split = onnx_ir::NodeProto::new();
    split.name = format!("{joined}_split");
    split.op_type = "Split".into();
    split.input = vec![joined.to_string(), sizes_name];
    split.output = parts.iter().map(|(name, _)| name.to_string()).collect();
    split.attribute.push(axis);
    graph.node.push(split);
    model.write_to_bytes().map_err(invalid)
}
