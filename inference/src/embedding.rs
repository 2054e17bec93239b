//! Embeddings: the network's pooled backbone features, served as they are (L2-normalise them
//! for cosine similarity).

use std::convert::Infallible;

use serde::Serialize;

use crate::served::{NoOptions, Output, ServedModel, ServedTask};

/// `POST /v1/embed`: the pooled backbone features (L2-normalise them for cosine similarity).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbedAnswer {
    pub model: String,
    pub dim: usize,
    pub embedding: Vec<f32>,
}

/// Embedding, served.
pub struct Embed;

impl ServedTask for Embed {
    const TASK: &'static str = "embedding";
    const PATH: &'static str = "/v1/embed";
    const SUMMARY: &'static str = "Embedding: pooled backbone features";
    type Query = NoOptions;
    type Options = ();
    type Error = Infallible;
    type Answer = EmbedAnswer;

    fn options(_: &ServedModel, _: NoOptions) -> Result<(), Infallible> {
        Ok(())
    }

    fn answer(model: &ServedModel, _: (), _: [usize; 2], output: Output) -> EmbedAnswer {
        EmbedAnswer {
            model: model.name.to_string(),
            dim: output.values.len(),
            embedding: output.values,
        }
    }
}
