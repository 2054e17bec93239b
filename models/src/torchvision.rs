//! ResNet weights under torchvision's names, both ways: PyTorch and SafeTensors files in (for
//! fine-tuning from MoCo, the paper's release or torchvision), SafeTensors out (for taking a
//! backbone to PyTorch, detectron2 or mmdetection).
//!
//! PyTorch checkpoints come in a few wrappings: MoCo's `{"state_dict": {"module.encoder_q.…"}}`,
//! the paper's released `exemplar_v2.pth` (torchvision keys, possibly under `model` or
//! `state_dict`), and plain torchvision state dicts. On the way in, prefixes are stripped,
//! torchvision's `downsample.0/1` become our `downsample.conv/bn`, BatchNorm `weight/bias` become
//! `gamma/beta` (burn-store's PyTorch adapter), and the classifier (`fc.*`) and MoCo's key
//! encoder and queue are ignored. A backbone parameter that the file does not provide is an
//! error: a silently half-initialised backbone would make every transfer number meaningless.
//! The way out is the exact inverse, without a prefix.

use std::path::{Path, PathBuf};

use burn::store::{
    ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    PytorchStoreError, SafetensorsStore, SafetensorsStoreError,
};
use burn::tensor::Device;
use thiserror::Error;

use crate::{ResNet, ResNetConfig};

#[derive(Debug, Error)]
pub enum TorchvisionError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot read it as SafeTensors")]
    Safetensors {
        path: PathBuf,
        #[source]
        source: SafetensorsStoreError,
    },
    #[error("{path}: cannot read it as a PyTorch checkpoint")]
    Pytorch {
        path: PathBuf,
        #[source]
        source: PytorchStoreError,
    },
    #[error("{path}: no torchvision ResNet keys found")]
    NoKeys { path: PathBuf },
    #[error("{path}: {count} tensors do not fit {arch}, e.g. {first}")]
    Misfit {
        path: PathBuf,
        count: usize,
        arch: String,
        first: String,
    },
    #[error(
        "{path}: {count} backbone tensors are missing for {arch}, e.g. {examples} (is it a ResNet of this depth?)"
    )]
    Missing {
        path: PathBuf,
        count: usize,
        arch: String,
        examples: String,
    },
}

/// Prefixes wrapped around torchvision keys by the training code that saved them.
const PREFIXES: [&str; 4] = ["module.encoder_q.", "encoder_q.", "module.", "backbone."];

/// Keys of the backbone, under any of the prefixes. Keys outside it (classifier, key encoder,
/// queue) are expected and ignored.
const BACKBONE_KEYS: &str = r"^(module\.)?(encoder_q\.|backbone\.)?(conv1|bn1|layer[1-4])\.";

/// Writes `backbone` as a SafeTensors file with torchvision's key names (`conv1.weight`,
/// `layer1.0.bn1.running_var`, `layer2.0.downsample.0.weight`, …), replacing `path`. There is
/// no `fc`: load it into `torchvision.models.resnetNN()` with `strict=False`.
pub fn save_safetensors(backbone: &ResNet, path: &Path) -> Result<(), TorchvisionError> {
    let mut store = SafetensorsStore::from_file(path)
        .overwrite(true)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"\.downsample\.conv\.", ".downsample.0.")
        .with_key_remapping(r"\.downsample\.bn\.", ".downsample.1.");
    backbone
        .save_into(&mut store)
        .map_err(|source| TorchvisionError::Safetensors {
            path: path.to_path_buf(),
            source,
        })
}

/// Loads torchvision-keyed ResNet weights from a `.pth`/`.pt`/`.tar` or `.safetensors` file.
pub fn load(path: &Path, arch: ResNetConfig, device: &Device) -> Result<ResNet, TorchvisionError> {
    let path_buf = path.to_path_buf();
    if !path.is_file() {
        return Err(TorchvisionError::NotFound { path: path_buf });
    }
    let mut backbone = arch.init(device);
    let result = if path.extension().is_some_and(|e| e == "safetensors") {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .with_regex(BACKBONE_KEYS)
            .allow_partial(true);
        for (from, to) in remappings() {
            store = store.with_key_remapping(from, to);
        }
        backbone
            .load_from(&mut store)
            .map_err(|source| TorchvisionError::Safetensors {
                path: path_buf.clone(),
                source,
            })?
    } else {
        load_pytorch_state_dict(&mut backbone, path)?
    };
    check_complete(&result, path, &arch)?;
    Ok(backbone)
}

/// A `torch.save` file: the state dict sits at the top level or under `state_dict` or `model`.
fn load_pytorch_state_dict(
    backbone: &mut ResNet,
    path: &Path,
) -> Result<ApplyResult, TorchvisionError> {
    let mut last_error = None;
    for key in [None, Some("state_dict"), Some("model")] {
        let mut store = PytorchStore::from_file(path)
            .with_regex(BACKBONE_KEYS)
            .allow_partial(true);
        if let Some(key) = key {
            store = store.with_top_level_key(key);
        }
        for (from, to) in remappings() {
            store = store.with_key_remapping(from, to);
        }
        match backbone.load_from(&mut store) {
            Ok(result) if !result.applied.is_empty() => return Ok(result),
            Ok(_) => {}
            Err(source) => last_error = Some(source),
        }
    }
    Err(match last_error {
        Some(source) => TorchvisionError::Pytorch {
            path: path.to_path_buf(),
            source,
        },
        None => TorchvisionError::NoKeys {
            path: path.to_path_buf(),
        },
    })
}

fn check_complete(
    result: &ApplyResult,
    path: &Path,
    arch: &ResNetConfig,
) -> Result<(), TorchvisionError> {
    if result.applied.is_empty() {
        return Err(TorchvisionError::NoKeys {
            path: path.to_path_buf(),
        });
    }
    if let Some(first) = result.errors.first() {
        return Err(TorchvisionError::Misfit {
            path: path.to_path_buf(),
            count: result.errors.len(),
            arch: arch.describe(),
            first: first.to_string(),
        });
    }
    // Running statistics may be absent from exports that drop buffers; every weight must be there.
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| !p.ends_with("running_mean") && !p.ends_with("running_var"))
        .collect();
    if !missing.is_empty() {
        return Err(TorchvisionError::Missing {
            path: path.to_path_buf(),
            count: missing.len(),
            arch: arch.describe(),
            examples: missing[..missing.len().min(3)].join(", "),
        });
    }
    Ok(())
}

fn remappings() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = PREFIXES
        .iter()
        .map(|p| (format!("^{}", p.replace('.', r"\.")), String::new()))
        .collect();
    out.push((r"\.downsample\.0\.".into(), ".downsample.conv.".into()));
    out.push((r"\.downsample\.1\.".into(), ".downsample.bn.".into()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleMapper, Param};
    use burn::tensor::{Distribution, Tensor};

    use crate::{Depth, Stem};

    fn arch(depth: Depth) -> ResNetConfig {
        ResNetConfig::new(depth)
            .with_width(0.0625)
            .with_stem(Stem::Small)
    }

    /// Every parameter and BatchNorm statistic moved off its initial value, so a BatchNorm
    /// mapping mistake (weight/gamma, running_var) cannot hide behind ones and zeros.
    fn shifted(depth: Depth, device: &Device) -> ResNet {
        struct Shift;
        impl ModuleMapper for Shift {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.map(|t| {
                    let noise = t.random_like(Distribution::Uniform(0.5, 1.5));
                    t.add(noise)
                })
            }
        }
        arch(depth).init(device).map(&mut Shift)
    }

    fn features(backbone: &ResNet, device: &Device) -> Vec<f32> {
        let x = Tensor::<4>::ones([2, 3, 16, 16], device);
        backbone.forward(x).into_data().iter::<f32>().collect()
    }

    /// The tensor names in a SafeTensors file's header.
    fn names(path: &Path) -> String {
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    }

    #[test]
    fn a_saved_backbone_has_torchvision_names_and_loads_back_identically() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backbone.safetensors");
        // Bottleneck blocks and every key torchvision's ResNet-50 has.
        let original = arch(Depth::ResNet50).init(&device);
        save_safetensors(&original, &path).unwrap();
        let header = names(&path);
        for key in [
            "\"conv1.weight\"",
            "\"bn1.weight\"",
            "\"bn1.bias\"",
            "\"layer1.0.conv3.weight\"",
            "\"layer2.0.downsample.0.weight\"",
            "\"layer2.0.downsample.1.running_var\"",
            "\"layer4.2.bn3.running_mean\"",
        ] {
            assert!(header.contains(key), "{key} missing");
        }
        for burn_name in ["gamma", "beta", "downsample.conv", "downsample.bn"] {
            assert!(!header.contains(burn_name), "{burn_name} left in the file");
        }
        let loaded = load(&path, arch(Depth::ResNet50), &device).unwrap();
        assert_eq!(features(&original, &device), features(&loaded, &device));
        // With every value moved off its initialisation, so BatchNorm cannot hide a mix-up.
        let original = shifted(Depth::ResNet18, &device);
        save_safetensors(&original, &path).unwrap();
        let loaded = load(&path, arch(Depth::ResNet18), &device).unwrap();
        assert_eq!(features(&original, &device), features(&loaded, &device));
    }

    #[test]
    fn moco_style_safetensors_load_into_the_same_network() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moco.safetensors");
        let original = shifted(Depth::ResNet18, &device);
        // As MoCo would have written it: torchvision names under `module.encoder_q.`.
        let mut store = SafetensorsStore::from_file(&path)
            .with_to_adapter(BurnToPyTorchAdapter)
            .with_key_remapping(r"\.downsample\.conv\.", ".downsample.0.")
            .with_key_remapping(r"\.downsample\.bn\.", ".downsample.1.")
            .with_key_remapping(r"^(.*)$", "module.encoder_q.$1");
        original.save_into(&mut store).unwrap();
        assert!(names(&path).contains("module.encoder_q.layer2.0.downsample.1.running_var"));
        let loaded = load(&path, arch(Depth::ResNet18), &device).unwrap();
        assert_eq!(features(&original, &device), features(&loaded, &device));
    }

    #[test]
    fn a_file_that_does_not_fit_the_architecture_is_an_error() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r18.safetensors");
        save_safetensors(&arch(Depth::ResNet18).init(&device), &path).unwrap();
        let err = load(&path, arch(Depth::ResNet34), &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r18.safetensors") && err.contains("resnet34"),
            "{err}"
        );
        let absent = dir.path().join("absent.pth");
        let err = load(&absent, arch(Depth::ResNet18), &device).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
        // Not a checkpoint at all.
        std::fs::write(&absent, b"not a pickle").unwrap();
        let err = load(&absent, arch(Depth::ResNet18), &device).unwrap_err();
        assert!(err.to_string().contains("absent.pth"), "{err}");
    }
}
