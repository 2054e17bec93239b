//! A task as a server answers it: the options a request may set, and the answer built from one
//! image's model output. Each task implements [`ServedTask`] in its own module, beside its
//! decoding ([`crate::detection::Detect`], [`crate::segmentation::Segment`],
//! [`crate::landmarks::Locate`], [`crate::embedding::Embed`],
//! [`crate::classification::Classify`]); `serve` gives every one the same route skeleton, so a
//! new task is served by adding its module and one registration line there.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::card::ModelCard;

/// One image's output tensor: its values and shape (without the batch axis).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
}

/// Output tensors whose other axes differ cannot be joined along the channels.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the model returned no outputs")]
    Empty,
    #[error("outputs of shapes {first:?} and {other:?} do not join along the channels")]
    Shapes {
        first: Vec<usize>,
        other: Vec<usize>,
    },
}

impl Output {
    /// Tensors joined along their first axis (the channels): detection's `heatmaps`, `offsets`
    /// and `sizes` back into the `[classes + 4, h, w]` maps its decoding reads. One tensor is
    /// returned as it is.
    pub fn join(mut outputs: Vec<Output>) -> Result<Output, JoinError> {
        if outputs.len() == 1 {
            return Ok(outputs.remove(0));
        }
        let first = outputs.first().ok_or(JoinError::Empty)?;
        let mut shape = first.shape.clone();
        for other in &outputs[1..] {
            if other.shape.len() != shape.len() || other.shape.get(1..) != shape.get(1..) {
                return Err(JoinError::Shapes {
                    first: first.shape.clone(),
                    other: other.shape.clone(),
                });
            }
        }
        shape[0] = outputs.iter().map(|o| o.shape[0]).sum();
        let values = outputs.into_iter().flat_map(|o| o.values).collect();
        Ok(Output { values, shape })
    }
}

/// The model that answers: its name, its card and its network input's `[width, height]`.
#[derive(Debug, Clone, Copy)]
pub struct ServedModel<'a> {
    pub name: &'a str,
    pub card: &'a ModelCard,
    pub input_size: [usize; 2],
}

/// What one task adds to the route every task shares (pick the model, check the options, decode
/// and run the image, answer).
pub trait ServedTask {
    /// The model card's task name ([`crate::TaskSpec::name`]) of the models it takes.
    const TASK: &'static str;
    /// Where it is served, `/v1/<verb>`.
    const PATH: &'static str;
    /// One line on what it answers, for the API description.
    const SUMMARY: &'static str;
    /// The request's query options for this task, as they arrive.
    type Query: DeserializeOwned + Send + 'static;
    /// The options checked against the model, before the image is decoded.
    type Options;
    /// Why the options were refused (the server answers 400 with it).
    type Error: std::error::Error;
    type Answer: Serialize;

    fn options(model: &ServedModel, query: Self::Query) -> Result<Self::Options, Self::Error>;

    /// The answer, in the `[width, height]` pixels of the submitted image, from the model's
    /// output (its tensors joined along the channels).
    fn answer(
        model: &ServedModel,
        options: Self::Options,
        image: [usize; 2],
        output: Output,
    ) -> Self::Answer;
}

/// The query of a task without options.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoOptions {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_join_along_the_channels_or_say_why_not() {
        let a = Output {
            values: vec![1.0; 4],
            shape: vec![1, 2, 2],
        };
        let b = Output {
            values: vec![2.0; 8],
            shape: vec![2, 2, 2],
        };
        let joined = Output::join(vec![a.clone(), b]).unwrap();
        assert_eq!(joined.shape, [3, 2, 2]);
        assert_eq!(joined.values[3..5], [1.0, 2.0]);
        let odd = Output {
            values: vec![0.0; 3],
            shape: vec![1, 3, 1],
        };
        assert!(matches!(
            Output::join(vec![a, odd]),
            Err(JoinError::Shapes { .. })
        ));
        assert!(matches!(Output::join(vec![]), Err(JoinError::Empty)));
    }
}
