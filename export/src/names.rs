//! The graph's tensor names. burn-onnx names every tensor by its capture order (`tensor_120`
//! in, `tensor_201` out); the export renames the graph's input and output to the model card's
//! names (`images` in; `embedding`, `logits`, `maps` or `points` out), which clients of the Open
//! Inference Protocol feed and read by.

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
