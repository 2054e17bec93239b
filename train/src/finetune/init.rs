//! Initial backbone weights for fine-tuning: a `train pretrain` run, a PyTorch or SafeTensors
//! file with torchvision ResNet keys, or random.
//!
//! PyTorch checkpoints come in a few wrappings: MoCo's `{"state_dict": {"module.encoder_q.…"}}`,
//! the paper's released `exemplar_v2.pth` (torchvision keys, possibly under `model` or
//! `state_dict`), and plain torchvision state dicts. Prefixes are stripped, torchvision's
//! `downsample.0/1` become our `downsample.conv/bn`, BatchNorm `weight/bias` become
//! `gamma/beta` (burn-store's PyTorch adapter), and the classifier (`fc.*`) and MoCo's key
//! encoder and queue are ignored. A backbone parameter that the file does not provide is an
//! error: a silently half-initialised backbone would make every transfer number meaningless.

use std::path::Path;

use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use burn::tensor::Device;
use exemplar_models::{ResNet, ResNetConfig};
use thiserror::Error;

use super::config::{FinetuneConfig, Init};
use crate::card::{CardError, load_backbone};

#[derive(Debug, Error)]
pub enum InitError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("{path}: {reason}")]
    Weights { path: String, reason: String },
}

/// Prefixes wrapped around torchvision keys by the training code that saved them.
const PREFIXES: [&str; 4] = ["module.encoder_q.", "encoder_q.", "module.", "backbone."];

/// The initial backbone, with the configuration updated to what the source dictates
/// (architecture, input normalisation and size of a pretraining run).
pub fn initial_backbone(config: &mut FinetuneConfig, device: &Device) -> Result<ResNet, InitError> {
    match config.init.clone() {
        Init::Random => Ok(config.backbone_config().init(device)),
        Init::Run(dir) => {
            let (backbone, card) = load_backbone(&dir, device)?;
            config.arch = card.backbone.depth;
            config.width = card.backbone.width;
            config.stem = card.backbone.stem;
            config.normalization = card.normalization;
            Ok(backbone)
        }
        Init::PyTorch(path) => load_pytorch(&path, config.backbone_config(), device),
    }
}

/// Loads torchvision-keyed ResNet weights from a `.pth`/`.pt`/`.tar` or `.safetensors` file.
pub fn load_pytorch(path: &Path, arch: ResNetConfig, device: &Device) -> Result<ResNet, InitError> {
    let fail = |reason: String| InitError::Weights {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_file() {
        return Err(fail("no such file".into()));
    }
    let mut backbone = arch.init(device);
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    // Keys outside the backbone (classifier, key encoder, queue) are expected and ignored.
    let wanted = r"^(module\.)?(encoder_q\.|backbone\.)?(conv1|bn1|layer[1-4])\.";
    let result = if safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .with_regex(wanted)
            .allow_partial(true);
        for (from, to) in remappings() {
            store = store.with_key_remapping(from, to);
        }
        backbone
            .load_from(&mut store)
            .map_err(|e| fail(e.to_string()))?
    } else {
        let mut last_error = String::new();
        let mut loaded = None;
        // The state dict sits at the top level or under one of these keys.
        for key in [None, Some("state_dict"), Some("model")] {
            let mut store = PytorchStore::from_file(path)
                .with_regex(wanted)
                .allow_partial(true);
            if let Some(key) = key {
                store = store.with_top_level_key(key);
            }
            for (from, to) in remappings() {
                store = store.with_key_remapping(from, to);
            }
            match backbone.load_from(&mut store) {
                Ok(result) if !result.applied.is_empty() => {
                    loaded = Some(result);
                    break;
                }
                Ok(_) => last_error = "no torchvision ResNet keys found".into(),
                Err(e) => last_error = e.to_string(),
            }
        }
        loaded.ok_or_else(|| fail(last_error))?
    };
    if !result.errors.is_empty() {
        return Err(fail(format!(
            "{} tensors do not fit {}: {:?}",
            result.errors.len(),
            arch.describe(),
            result.errors.first()
        )));
    }
    // Running statistics may be absent from exports that drop buffers; every weight must be there.
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| !p.ends_with("running_mean") && !p.ends_with("running_var"))
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "{} backbone tensors are missing for {}, e.g. {} (is it a ResNet of this depth?)",
            missing.len(),
            arch.describe(),
            missing[..missing.len().min(3)].join(", ")
        )));
    }
    Ok(backbone)
}

fn remappings() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = PREFIXES
        .iter()
        .map(|p| (format!("^{}", regex_escape(p)), String::new()))
        .collect();
    out.push((r"\.downsample\.0\.".into(), ".downsample.conv.".into()));
    out.push((r"\.downsample\.1\.".into(), ".downsample.bn.".into()));
    out
}

fn regex_escape(s: &str) -> String {
    s.replace('.', r"\.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::store::BurnToPyTorchAdapter;
    use burn::tensor::{Distribution, Tensor};
    use exemplar_models::{Depth, Stem};

    fn arch(depth: Depth) -> ResNetConfig {
        ResNetConfig::new(depth)
            .with_width(0.0625)
            .with_stem(Stem::Small)
    }

    /// Writes `backbone` as MoCo would have: torchvision names under `module.encoder_q.`.
    fn write_moco_safetensors(backbone: &ResNet, path: &Path) {
        let mut store = SafetensorsStore::from_file(path)
            .with_to_adapter(BurnToPyTorchAdapter)
            .with_key_remapping(r"\.downsample\.conv\.", ".downsample.0.")
            .with_key_remapping(r"\.downsample\.bn\.", ".downsample.1.")
            .with_key_remapping(r"^(.*)$", "module.encoder_q.$1");
        backbone.save_into(&mut store).unwrap();
    }

    #[test]
    fn moco_style_safetensors_load_into_the_same_network() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moco.safetensors");
        // Every parameter and BatchNorm statistic moved off its initial value, so a BatchNorm
        // mapping mistake (weight/gamma, running_var) cannot hide behind ones and zeros.
        struct Shift;
        impl burn::module::ModuleMapper for Shift {
            fn map_float<const D: usize>(
                &mut self,
                param: burn::module::Param<Tensor<D>>,
            ) -> burn::module::Param<Tensor<D>> {
                param.map(|t| {
                    let noise = t.random_like(Distribution::Uniform(0.5, 1.5));
                    t.add(noise)
                })
            }
        }
        let original = arch(Depth::ResNet18).init(&device).map(&mut Shift);
        write_moco_safetensors(&original, &path);
        let names = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            names.contains("module.encoder_q.layer2.0.downsample.1.running_var"),
            "torchvision names expected"
        );
        assert!(names.contains("module.encoder_q.bn1.weight"));

        let loaded = load_pytorch(&path, arch(Depth::ResNet18), &device).unwrap();
        let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let a: Vec<f32> = original
            .forward(x.clone())
            .into_data()
            .iter::<f32>()
            .collect();
        let b: Vec<f32> = loaded.forward(x).into_data().iter::<f32>().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn a_file_that_does_not_fit_the_architecture_is_an_error() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r18.safetensors");
        write_moco_safetensors(&arch(Depth::ResNet18).init(&device), &path);
        let err = load_pytorch(&path, arch(Depth::ResNet34), &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r18.safetensors") && err.contains("resnet34"),
            "{err}"
        );
        let err = load_pytorch(
            &dir.path().join("absent.pth"),
            arch(Depth::ResNet18),
            &device,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    /// `tests/data/pytorch/make_fixtures.py` writes the same weights as a MoCo `torch.save`
    /// checkpoint and as a torchvision SafeTensors file.
    #[test]
    fn a_moco_pth_checkpoint_and_a_torchvision_safetensors_file_load_alike() {
        let device = Device::flex();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pytorch");
        let arch = ResNetConfig::new(Depth::ResNet18).with_width(0.0625);
        let moco = load_pytorch(&dir.join("moco_checkpoint.pth.tar"), arch, &device).unwrap();
        let plain = load_pytorch(&dir.join("resnet18_w0.0625.safetensors"), arch, &device).unwrap();
        // BatchNorm buffers arrive under burn's names: running_var[i] = 1 + i / 100.
        let var: Vec<f32> = moco
            .bn1
            .running_var
            .value()
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(var, vec![1.0, 1.01, 1.02, 1.03]);
        let mean: Vec<f32> = moco.layer2[0]
            .downsample
            .as_ref()
            .unwrap()
            .bn
            .running_mean
            .value()
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(mean[..3], [0.0, 0.1, 0.2]);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let a: Vec<f32> = moco.forward(x.clone()).into_data().iter::<f32>().collect();
        let b: Vec<f32> = plain.forward(x).into_data().iter::<f32>().collect();
        assert_eq!(a, b);
        // The same file does not fit another architecture.
        let wide = arch.with_width(0.125);
        let err = load_pytorch(&dir.join("moco_checkpoint.pth.tar"), wide, &device).unwrap_err();
        assert!(err.to_string().contains("moco_checkpoint.pth.tar"), "{err}");
    }
}
