//! Evaluation of frozen features: the kNN monitor and the linear probe.
pub mod features;
pub mod knn;
pub mod linear;
