//! Burn modules for exemplar: ResNet backbones, projection heads and the contrastive core
//! (label-aware key queue, momentum update, Exemplar/MoCo InfoNCE loss), and the transfer
//! tasks' models (detection, segmentation, landmarks, classification).
//!
//! This crate holds the modules and the files that carry them (weights, the backbone card,
//! `network.json`, torchvision SafeTensors), so that `exemplar-export` can load every model
//! without the training stack. No command line, no datasets: the training loops live in
//! `exemplar-train`.

pub mod backbone;
pub mod card;
pub mod contrastive;
pub mod encoder;
pub mod heads;
mod layers;
pub mod network;
pub mod store;
pub mod torchvision;

pub use backbone::resnet::{Depth, ResNet, ResNetConfig, Stem};
pub use contrastive::loss::{ContrastiveLoss, contrastive_loss};
pub use contrastive::momentum::momentum_update;
pub use contrastive::queue::{KeyQueue, UNLABELLED};
pub use encoder::{Encoder, EncoderConfig};
pub use heads::classification::{Classifier, ClassifierConfig};
pub use heads::detection::{Detector, DetectorConfig};
pub use heads::landmarks::{LandmarkRegressor, LandmarkRegressorConfig};
pub use heads::projection::{ProjectionHead, ProjectionHeadConfig, ProjectionKind};
pub use heads::segmentation::{Segmenter, SegmenterConfig};
pub use network::{HeadConfig, Network, NetworkConfig, NetworkVisitor};
