//! Open Inference Protocol inference bodies, as JSON and with the binary tensor data extension.
//!
//! With the extension, a body is a JSON header of `Inference-Header-Content-Length` bytes
//! followed by raw tensor bytes: each tensor whose `parameters` name a `binary_data_size` takes
//! that many bytes, in the order the tensors are listed, little-endian and row-major. Requests
//! may mix JSON and binary inputs; outputs are binary when the request asks for it, per output
//! (`outputs[i].parameters.binary_data`) or for all (`parameters.binary_data_output`), as
//! Triton's clients do by default.

use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use exemplar_inference::input::InputError;
use exemplar_inference::{InputDatatype, InputValues};

use crate::error::ApiError;

/// The extension's name in server metadata.
pub const BINARY_TENSOR_DATA: &str = "binary_tensor_data";
/// The header giving the JSON part's length in bytes.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Debug, Deserialize, ToSchema)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: RequestParameters,
    pub inputs: Vec<InputTensor>,
    /// The outputs to return, and how; all of them when absent.
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// The request-wide parameters this server reads; others are ignored, as the protocol allows.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RequestParameters {
    #[serde(default)]
    pub binary_data_output: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InputTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: String,
    /// Flat or nested numbers, in row-major order; absent when the data is binary.
    #[serde(default)]
    #[schema(value_type = Option<Vec<f32>>)]
    pub data: Option<Value>,
    #[serde(default)]
    pub parameters: TensorParameters,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TensorParameters {
    /// Bytes of this tensor in the binary part of the body.
    #[serde(default)]
    pub binary_data_size: Option<usize>,
    /// The shared-memory extensions, which this server does not speak.
    #[serde(default)]
    pub shared_memory_region: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestedOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: OutputParameters,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OutputParameters {
    #[serde(default)]
    pub binary_data: Option<bool>,
    #[serde(default)]
    pub shared_memory_region: Option<String>,
}

/// A request's JSON header and its binary part (empty without the extension).
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<(InferRequest, Vec<u8>), ApiError> {
    if let Some(encoding) = headers.get(CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding {} is not supported: send the body uncompressed",
                String::from_utf8_lossy(encoding.as_bytes())
            ),
        ));
    }
    let json_length = match headers.get(HEADER_LENGTH) {
        None => body.len(),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .filter(|&length| length <= body.len())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Inference-Header-Content-Length must be a byte count within the body's {} bytes, got {:?}",
                    body.len(),
                    String::from_utf8_lossy(value.as_bytes())
                ))
            })?,
    };
    let (json_part, binary) = body.split_at(json_length);
    let request: InferRequest = serde_json::from_slice(json_part)
        .map_err(|e| ApiError::bad_request(format!("not an inference request: {e}")))?;
    let shared_memory = request
        .inputs
        .iter()
        .any(|input| input.parameters.shared_memory_region.is_some())
        || request
            .outputs
            .iter()
            .flatten()
            .any(|output| output.parameters.shared_memory_region.is_some());
    if shared_memory {
        return Err(ApiError::bad_request(
            "shared-memory tensors are not supported: send the data in the body",
        ));
    }
    Ok((request, binary.to_vec()))
}

/// Each input's values, from its JSON `data` or its slice of the binary part, read as its
/// datatype (which `infer::check_input` has matched to the model's). Every value count must
/// match the input's shape and every binary byte must belong to an input.
pub fn input_values(request: &InferRequest, binary: &[u8]) -> Result<Vec<InputValues>, ApiError> {
    let mut rest = binary;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        let count = input.shape.iter().product::<usize>();
        let datatype = InputDatatype::from_name(&input.datatype).ok_or_else(|| {
            ApiError::bad_request(format!(
                "input '{}': datatype {} is not supported",
                input.name, input.datatype
            ))
        })?;
        let invalid = |e: InputError| ApiError::bad_request(format!("input '{}': {e}", input.name));
        let values = match (input.parameters.binary_data_size, &input.data) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "input '{}' has both data and binary_data_size",
                    input.name
                )));
            }
            (None, None) => {
                return Err(ApiError::bad_request(format!(
                    "input '{}' has neither data nor binary_data_size",
                    input.name
                )));
            }
            (Some(size), None) => {
                if size > rest.len() {
                    return Err(ApiError::bad_request(format!(
                        "input '{}' names {size} binary bytes, but only {} follow the JSON header",
                        input.name,
                        rest.len()
                    )));
                }
                let (bytes, after) = rest.split_at(size);
                rest = after;
                InputValues::from_le_bytes(datatype, bytes, count).map_err(|e| {
                    ApiError::bad_request(format!(
                        "input '{}' {:?}: binary data of {e}",
                        input.name, input.shape
                    ))
                })?
            }
            (None, Some(data)) => {
                let mut numbers = Vec::with_capacity(count);
                flatten(data, &mut numbers)?;
                if numbers.len() != count {
                    return Err(ApiError::bad_request(format!(
                        "input '{}': data holds {} numbers, the shape {:?} needs {count}",
                        input.name,
                        numbers.len(),
                        input.shape
                    )));
                }
                InputValues::from_numbers(datatype, &numbers).map_err(invalid)?
            }
        };
        inputs.push(values);
    }
    if !rest.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} bytes follow the JSON header that no input's binary_data_size accounts for",
            rest.len()
        )));
    }
    Ok(inputs)
}

/// Row-major numbers of an OIP `data` field, flat or nested.
fn flatten(data: &Value, out: &mut Vec<f64>) -> Result<(), ApiError> {
    match data {
        Value::Number(n) => {
            out.push(
                n.as_f64()
                    .ok_or_else(|| ApiError::bad_request("data holds a number out of range"))?,
            );
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| flatten(item, out)),
        other => Err(ApiError::bad_request(format!(
            "data must hold numbers, found {other}"
        ))),
    }
}

/// One output tensor of an answer.
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Which of the model's outputs (`names`) the request asks for, by index, each with whether it
/// goes binary. Naming an output the model does not have is an error.
pub fn requested_outputs(
    request: &InferRequest,
    names: &[&str],
) -> Result<Vec<(usize, bool)>, ApiError> {
    let all_binary = request.parameters.binary_data_output;
    let Some(requested) = &request.outputs else {
        return Ok((0..names.len()).map(|i| (i, all_binary)).collect());
    };
    requested
        .iter()
        .map(|wanted| {
            let index = output_index(names, &wanted.name)?;
            Ok((index, wanted.parameters.binary_data.unwrap_or(all_binary)))
        })
        .collect()
}

/// The index of the output `wanted` among the model's outputs `names`; an unknown name is a
/// 400 (INVALID_ARGUMENT over gRPC).
pub fn output_index(names: &[&str], wanted: &str) -> Result<usize, ApiError> {
    names
        .iter()
        .position(|name| *name == wanted)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown output '{wanted}' (the model's outputs are {names:?})"
            ))
        })
}

/// An answer's output tensor: its values as `data`, or its size in the binary part.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerTensor {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BinarySize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BinarySize {
    pub binary_data_size: usize,
}

/// An inference answer (its JSON part, with the binary tensor data extension).
#[derive(Debug, Serialize, ToSchema)]
pub struct InferAnswer {
    pub model_name: String,
    pub model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<AnswerTensor>,
}

/// The answer body: plain JSON, or a JSON header followed by the binary outputs' bytes.
pub fn answer(model: &str, id: Option<&str>, outputs: Vec<(OutputTensor, bool)>) -> Response {
    let any_binary = outputs.iter().any(|(_, as_binary)| *as_binary);
    let mut binary = Vec::new();
    let outputs = outputs
        .into_iter()
        .map(|(output, as_binary)| {
            let mut tensor = AnswerTensor {
                name: output.name,
                datatype: "FP32",
                shape: output.shape,
                data: None,
                parameters: None,
            };
            if as_binary {
                let start = binary.len();
                binary.extend(output.values.iter().flat_map(|v| v.to_le_bytes()));
                tensor.parameters = Some(BinarySize {
                    binary_data_size: binary.len() - start,
                });
            } else {
                tensor.data = Some(output.values);
            }
            tensor
        })
        .collect();
    let header = InferAnswer {
        model_name: model.to_string(),
        model_version: "1",
        id: id.map(str::to_string),
        outputs,
    };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    if !any_binary {
        return (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            header,
        )
            .into_response();
    }
    let length = HeaderValue::from(header.len());
    let mut body = header;
    body.extend(binary);
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (axum::http::HeaderName::from_static(HEADER_LENGTH), length),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(json: Value) -> InferRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_output_s_own_setting_wins_over_the_request_s() {
        let names = ["logits", "embedding"];
        let all = request(json!({"inputs": [], "parameters": {"binary_data_output": true}}));
        assert_eq!(
            requested_outputs(&all, &names).unwrap(),
            [(0, true), (1, true)]
        );
        let one = request(
            json!({"inputs": [], "parameters": {"binary_data_output": true},
            "outputs": [{"name": "embedding", "parameters": {"binary_data": false}}]}),
        );
        assert_eq!(requested_outputs(&one, &names).unwrap(), [(1, false)]);
        let unknown = request(json!({"inputs": [], "outputs": [{"name": "boxes"}]}));
        let error = requested_outputs(&unknown, &names).unwrap_err();
        assert!(
            error.message.contains("unknown output 'boxes'"),
            "{}",
            error.message
        );
    }

    #[test]
    fn json_and_binary_inputs_mix_in_one_body() {
        let binary: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mixed = request(json!({"inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "data": [[3.0], [4.0]]},
            {"name": "b", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
        ]}));
        assert_eq!(
            input_values(&mixed, &binary).unwrap(),
            [
                InputValues::Fp32(vec![3.0, 4.0]),
                InputValues::Fp32(vec![1.5, -2.0])
            ]
        );
        let error = input_values(&mixed, &binary[..4]).unwrap_err();
        assert!(error.message.contains("only 4 follow"), "{}", error.message);
    }

    /// UINT8 and FP16 inputs are read by their own sizes and ranges, in JSON and in binary.
    #[test]
    fn typed_inputs_are_read_by_their_datatype() {
        let halves: Vec<u8> = [0.5f32, -1.0]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let typed = request(json!({"inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "UINT8", "data": [0, 128, 255]},
            {"name": "b", "shape": [2], "datatype": "FP16", "parameters": {"binary_data_size": 4}},
        ]}));
        assert_eq!(
            input_values(&typed, &halves).unwrap(),
            [
                InputValues::Uint8(vec![0, 128, 255]),
                InputValues::Fp16(vec![half::f16::from_f32(0.5), half::f16::from_f32(-1.0)])
            ]
        );
        let odd = request(json!({"inputs": [
            {"name": "b", "shape": [2], "datatype": "FP16", "parameters": {"binary_data_size": 6}},
        ]}));
        let error = input_values(&odd, &[0; 6]).unwrap_err();
        assert!(
            error
                .message
                .contains("binary data of 6 bytes, the shape needs 4 (FP16)"),
            "{}",
            error.message
        );
        let out_of_range = request(json!({"inputs": [
            {"name": "a", "shape": [1], "datatype": "UINT8", "data": [300]},
        ]}));
        let error = input_values(&out_of_range, &[]).unwrap_err();
        assert!(
            error.message.contains("300 is not a UINT8"),
            "{}",
            error.message
        );
    }
}
