//! A fine-tuned task network as a value: its configuration (saved as `network.json` beside the
//! weights) and the built module. `train` writes the configuration when it saves a model and
//! `export` rebuilds the network from it, so loading a model needs no training configuration.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::store::{StoreError, load_module};
use crate::{
    Classifier, ClassifierConfig, Detector, DetectorConfig, LandmarkRegressor,
    LandmarkRegressorConfig, ResNet, ResNetConfig, Segmenter, SegmenterConfig,
};

/// File names of a fine-tuned model inside its run (and each checkpoint) directory.
pub const NETWORK_CONFIG: &str = "network.json";
pub const NETWORK_WEIGHTS: &str = "model.bpk";

/// The architecture of a fine-tuned network: which task head, on which backbone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", content = "network", rename_all = "kebab-case")]
pub enum NetworkConfig {
    Classification(ClassifierConfig),
    Detection(DetectorConfig),
    Segmentation(SegmenterConfig),
    Landmarks(LandmarkRegressorConfig),
}

/// A built task network.
// One value exists per load and it is only borrowed: boxing the larger variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Network {
    Classifier(Classifier),
    Detector(Detector),
    Segmenter(Segmenter),
    Landmarks(LandmarkRegressor),
}

/// A task head's configuration: the network it builds around a backbone, and its entry in
/// [`NetworkConfig`]. Fine-tuning works through this, so a task's trainer needs no code of its
/// own for building and saving its network.
pub trait HeadConfig: Copy + Send + Sync + 'static {
    type Network: Module + 'static;

    /// The task network around `backbone`, with a fresh head.
    fn with_backbone(&self, backbone: ResNet, device: &Device) -> Self::Network;

    /// What `network.json` saves of it.
    fn network_config(&self) -> NetworkConfig;

    /// The network's backbone.
    fn backbone(network: &Self::Network) -> &ResNet;
}

/// [`HeadConfig`] for a head configuration whose network has a `backbone` field and a
/// `with_backbone` constructor (all of them).
macro_rules! head_config {
    ($config:ident => $network:ident, NetworkConfig::$variant:ident) => {
        impl HeadConfig for $config {
            type Network = $network;

            fn with_backbone(&self, backbone: ResNet, device: &Device) -> $network {
                $config::with_backbone(self, backbone, device)
            }

            fn network_config(&self) -> NetworkConfig {
                NetworkConfig::$variant(*self)
            }

            fn backbone(network: &$network) -> &ResNet {
                &network.backbone
            }
        }
    };
}

head_config!(ClassifierConfig => Classifier, NetworkConfig::Classification);
head_config!(DetectorConfig => Detector, NetworkConfig::Detection);
head_config!(SegmenterConfig => Segmenter, NetworkConfig::Segmentation);
head_config!(LandmarkRegressorConfig => LandmarkRegressor, NetworkConfig::Landmarks);

/// Something done with a network whatever its type, given the module and its forward pass (images
/// to an output tensor of rank `D`). Export captures and runs every network this way, so it has
/// no code of its own per task.
pub trait NetworkVisitor {
    type Output;

    fn visit<M: Module, const D: usize>(
        self,
        network: &M,
        forward: fn(&M, Tensor<4>) -> Tensor<D>,
    ) -> Self::Output;
}

impl Network {
    /// `visitor` on this network and its forward pass.
    pub fn visit<V: NetworkVisitor>(&self, visitor: V) -> V::Output {
        match self {
            Network::Classifier(m) => visitor.visit(m, Classifier::forward),
            Network::Detector(m) => visitor.visit(m, Detector::forward),
            Network::Segmenter(m) => visitor.visit(m, Segmenter::forward),
            Network::Landmarks(m) => visitor.visit(m, LandmarkRegressor::forward),
        }
    }

    /// The backbone, without its head.
    pub fn into_backbone(self) -> ResNet {
        match self {
            Network::Classifier(m) => m.backbone,
            Network::Detector(m) => m.backbone,
            Network::Segmenter(m) => m.backbone,
            Network::Landmarks(m) => m.backbone,
        }
    }
}

#[derive(Debug, Error)]
pub enum NetworkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a network configuration")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NetworkConfig {
    pub fn backbone(&self) -> &ResNetConfig {
        match self {
            NetworkConfig::Classification(c) => &c.backbone,
            NetworkConfig::Detection(c) => &c.backbone,
            NetworkConfig::Segmentation(c) => &c.backbone,
            NetworkConfig::Landmarks(c) => &c.backbone,
        }
    }

    /// A freshly initialised network of this architecture.
    pub fn init(&self, device: &Device) -> Network {
        match self {
            NetworkConfig::Classification(c) => Network::Classifier(c.init(device)),
            NetworkConfig::Detection(c) => Network::Detector(c.init(device)),
            NetworkConfig::Segmentation(c) => Network::Segmenter(c.init(device)),
            NetworkConfig::Landmarks(c) => Network::Landmarks(c.init(device)),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a network configuration serialises")
    }

    pub fn read(path: &Path) -> Result<Self, NetworkError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetworkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| NetworkError::Json {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Network {
    /// Loads the network saved in `dir` (`network.json` + `model.bpk`) in inference mode.
    pub fn load(dir: &Path, device: &Device) -> Result<(Network, NetworkConfig), NetworkError> {
        let config = NetworkConfig::read(&dir.join(NETWORK_CONFIG))?;
        let path = dir.join(NETWORK_WEIGHTS);
        let what = format!("{} ({})", config.name(), config.backbone().describe());
        let network = match config.init(device) {
            Network::Classifier(m) => Network::Classifier(load_module(&path, m, &what)?.valid()),
            Network::Detector(m) => Network::Detector(load_module(&path, m, &what)?.valid()),
            Network::Segmenter(m) => Network::Segmenter(load_module(&path, m, &what)?.valid()),
            Network::Landmarks(m) => Network::Landmarks(load_module(&path, m, &what)?.valid()),
        };
        Ok((network, config))
    }
}

impl NetworkConfig {
    /// The task's name, as in the model card.
    pub fn name(&self) -> &'static str {
        match self {
            NetworkConfig::Classification(_) => "classification",
            NetworkConfig::Detection(_) => "detection",
            NetworkConfig::Segmentation(_) => "segmentation",
            NetworkConfig::Landmarks(_) => "landmarks",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::save_module;
    use crate::{Depth, Stem};

    #[test]
    fn a_saved_network_loads_back_from_its_configuration() {
        let device = Device::flex();
        let backbone = ResNetConfig::new(Depth::ResNet18)
            .with_width(0.0625)
            .with_stem(Stem::Small);
        let config = NetworkConfig::Landmarks(LandmarkRegressorConfig {
            backbone,
            points: 5,
            channels: 8,
            image_size: 32,
        });
        let dir = tempfile::tempdir().unwrap();
        let Network::Landmarks(saved) = config.init(&device) else {
            unreachable!()
        };
        save_module(&dir.path().join(NETWORK_WEIGHTS), &saved, "landmarks").unwrap();
        std::fs::write(dir.path().join(NETWORK_CONFIG), config.to_json()).unwrap();
        let (loaded, read) = Network::load(dir.path(), &device).unwrap();
        assert_eq!(read, config);
        let Network::Landmarks(loaded) = loaded else {
            panic!("{loaded:?}")
        };
        let x = burn::tensor::Tensor::<4>::ones([1, 3, 32, 32], &device);
        let a: Vec<f32> = saved
            .valid()
            .forward(x.clone())
            .into_data()
            .iter()
            .collect();
        let b: Vec<f32> = loaded.forward(x).into_data().iter().collect();
        assert_eq!(a, b);

        // Weights of another architecture are refused with the file's name.
        let wider = NetworkConfig::Landmarks(LandmarkRegressorConfig {
            backbone: backbone.with_width(0.125),
            points: 5,
            channels: 8,
            image_size: 32,
        });
        std::fs::write(dir.path().join(NETWORK_CONFIG), wider.to_json()).unwrap();
        let err = Network::load(dir.path(), &device).unwrap_err();
        assert!(err.to_string().contains("model.bpk"), "{err}");
    }
}
