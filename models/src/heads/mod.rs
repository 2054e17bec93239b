//! Heads that sit on top of a backbone's pooled features.
pub mod projection;
