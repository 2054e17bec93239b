//! The momentum (exponential moving average) update of the key encoder:
//! `θ_k ← m·θ_k + (1 − m)·θ_q`, applied to every trainable parameter. BatchNorm running
//! statistics are buffers, not parameters, so each encoder keeps its own (as in MoCo, whose
//! update iterates `parameters()`). burn hands buffers to visitors like parameters, so they are
//! recognised by name.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Returns `key` with every parameter moved towards the parameter of `query` that has the same
/// path in the module tree.
///
/// Parameters are matched by path rather than by id so that the two encoders may have been built
/// or loaded independently. A parameter of `key` without a counterpart is left as it is.
pub fn momentum_update<M: Module>(key: M, query: &M, momentum: f64) -> M {
    let mut collect = CollectByPath::default();
    query.visit(&mut collect);
    let mut update = EmaByPath {
        source: collect.tensors,
        path: Vec::new(),
        momentum,
    };
    key.map(&mut update)
}

#[derive(Default)]
struct CollectByPath {
    path: Vec<String>,
    tensors: HashMap<String, Tensor<1>>,
}

impl ModuleVisitor for CollectByPath {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if is_buffer(&self.path) {
            return;
        }
        let values = param.val().detach().flatten::<1>(0, D - 1);
        self.tensors.insert(self.path.join("."), values);
    }
}

/// BatchNorm's running statistics.
fn is_buffer(path: &[String]) -> bool {
    matches!(
        path.last().map(String::as_str),
        Some("running_mean" | "running_var")
    )
}

struct EmaByPath {
    source: HashMap<String, Tensor<1>>,
    path: Vec<String>,
    momentum: f64,
}

impl ModuleMapper for EmaByPath {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // Buffers were not collected, so they are left as they are.
        let Some(source) = self.source.remove(&self.path.join(".")) else {
            return param;
        };
        let momentum = self.momentum;
        param.map(|key| {
            let shape = key.shape();
            crate::layers::momentum_update(key, source.reshape(shape), momentum)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::resnet::{Depth, ResNetConfig, Stem};
    use crate::encoder::EncoderConfig;
    use crate::heads::projection::ProjectionKind;
    use burn::tensor::Device;

    /// Every float parameter of a module, in visiting order, flattened.
    fn params<M: Module>(module: &M) -> Vec<Vec<f32>> {
        #[derive(Default)]
        struct All(Vec<Vec<f32>>);
        impl ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.push(param.val().into_data().iter::<f32>().collect());
            }
        }
        let mut all = All::default();
        module.visit(&mut all);
        all.0
    }

    #[test]
    fn every_parameter_moves_towards_its_own_counterpart() {
        let device = Device::flex();
        let config = EncoderConfig {
            backbone: ResNetConfig::new(Depth::ResNet18)
                .with_width(0.0625)
                .with_stem(Stem::Small),
            head: ProjectionKind::Mlp,
            out_features: 8,
        };
        let key = config.init(&device);
        let query = config.init(&device);
        // Distinct running statistics in the query, to see that they are not copied.
        let query = crate::encoder::Encoder {
            backbone: crate::backbone::resnet::ResNet {
                bn1: burn::nn::BatchNorm {
                    running_mean: burn::module::RunningState::new(Tensor::ones([8], &device)),
                    ..query.backbone.bn1
                },
                ..query.backbone
            },
            ..query
        };
        let (k0, q0) = (params(&key), params(&query));
        let (paths, buffers) = {
            let mut c = CollectByPath::default();
            query.visit(&mut c);
            (c.tensors.len(), q0.len() - c.tensors.len())
        };
        assert!(
            buffers > 0 && paths + buffers == q0.len(),
            "parameter paths must be unique"
        );
        let updated = params(&momentum_update(key, &query, 0.9));
        assert_eq!(updated.len(), k0.len());
        let mut kept = 0;
        for ((u, k), q) in updated.iter().zip(&k0).zip(&q0) {
            if u == k && k != q {
                kept += 1; // a buffer that differs between the encoders stays the key's own
                continue;
            }
            for i in 0..u.len() {
                let expected = 0.9 * k[i] + 0.1 * q[i];
                assert!((u[i] - expected).abs() < 1e-6, "{} vs {expected}", u[i]);
            }
        }
        assert_eq!(kept, 1, "only bn1.running_mean differs and is a buffer");
    }
}
