//! The paper's analyses of what a pretrained backbone keeps, usable on any run:
//! - [`invert`]: feature inversion, the image a backbone's features describe (`train analyze
//!   invert`), with a Deep Image Prior generator or a total-variation prior ([`prior`]);
//! - [`figure`]: the original and its reconstructions side by side, as a PNG.

pub mod figure;
pub mod invert;
pub mod prior;
