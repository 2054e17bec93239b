//! Heads that sit on top of a backbone: the contrastive projection, and the transfer tasks'
//! heads, each with the model that joins it to a backbone.
pub mod classification;
pub mod conv_block;
pub mod detection;
pub mod landmarks;
pub mod projection;
pub mod resize;
pub mod segmentation;
