//! Initial backbone weights for fine-tuning: a `train pretrain` run, a PyTorch or SafeTensors
//! file with torchvision ResNet keys (read by `exemplar_models::torchvision`, which says which
//! wrappings and names it accepts), or random.

use burn::tensor::Device;
use exemplar_models::ResNet;
use exemplar_models::card::load_backbone;
use exemplar_models::torchvision;

use super::config::{FinetuneConfig, Init};
use crate::run::RunError;

/// The initial backbone, with the configuration updated to what the source dictates
/// (architecture, input normalisation and size of a pretraining run).
pub fn initial_backbone(config: &mut FinetuneConfig, device: &Device) -> Result<ResNet, RunError> {
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
        Init::PyTorch(path) => Ok(torchvision::load(&path, config.backbone_config(), device)?),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use burn::tensor::{Distribution, Tensor};
    use exemplar_models::torchvision;
    use exemplar_models::{Depth, ResNetConfig};

    use super::*;

    /// `tests/data/pytorch/make_fixtures.py` writes the same weights as a MoCo `torch.save`
    /// checkpoint and as a torchvision SafeTensors file.
    #[test]
    fn a_moco_pth_checkpoint_and_a_torchvision_safetensors_file_load_alike() {
        let device = Device::flex();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pytorch");
        let arch = ResNetConfig::new(Depth::ResNet18).with_width(0.0625);
        let moco = torchvision::load(&dir.join("moco_checkpoint.pth.tar"), arch, &device).unwrap();
        let plain =
            torchvision::load(&dir.join("resnet18_w0.0625.safetensors"), arch, &device).unwrap();
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
        let err =
            torchvision::load(&dir.join("moco_checkpoint.pth.tar"), wide, &device).unwrap_err();
        assert!(err.to_string().contains("moco_checkpoint.pth.tar"), "{err}");
    }
}
