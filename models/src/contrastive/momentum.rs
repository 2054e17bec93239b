//! The momentum (exponential moving average) update of the key encoder:
//! `θ_k ← m·θ_k + (1 − m)·θ_q`, applied to every trainable parameter. BatchNorm running
//! statistics are buffers, not parameters, so each encoder keeps its own (as in MoCo).

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
        let values = param.val().detach().flatten::<1>(0, D - 1);
        self.tensors.insert(self.path.join("."), values);
    }
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
        let Some(source) = self.source.remove(&self.path.join(".")) else {
            return param;
        };
        let momentum = self.momentum;
        param.map(|key| {
            let shape = key.shape();
            let query = source.reshape(shape);
            (key.detach() * momentum + query * (1.0 - momentum)).detach()
        })
    }
}
