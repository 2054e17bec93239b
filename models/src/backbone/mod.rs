//! Feature extractors.
pub mod resnet;
