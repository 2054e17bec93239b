//! Choosing the compute device from `--device`.
//!
//! `cpu` (burn's pure-Rust `flex` backend) is always available. `wgpu`, `vulkan` and `cuda:N`
//! exist only in builds with the matching cargo feature, and are probed before use so that a
//! missing GPU is an error message rather than a panic inside the backend.
//!
//! - `wgpu`: burn's WGSL kernels on the graphics API wgpu picks (Vulkan on Linux), on the adapter
//!   it prefers (a discrete GPU first; `CUBECL_WGPU_DEFAULT_DEVICE=Cpu` picks a software one).
//! - `vulkan`: the same adapter pinned to Vulkan, with SPIR-V kernels.
//! - `cuda:N`: the N-th NVIDIA GPU, kernels compiled by NVRTC.

use burn::module::Module;
use burn::tensor::Device;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("unknown device '{0}' (expected cpu, wgpu, vulkan or cuda:N)")]
    Unknown(String),
    #[error("device '{0}' is not compiled into this binary: rebuild with `--features {1}`")]
    NotCompiled(String, &'static str),
    #[error("device '{0}' is not available on this machine: {1}")]
    NotPresent(String, String),
}

/// What `--device` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Wgpu,
    Vulkan,
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" | "flex" => Ok(DeviceSpec::Cpu),
            "wgpu" => Ok(DeviceSpec::Wgpu),
            "vulkan" => Ok(DeviceSpec::Vulkan),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

/// Whether `spec` names the CPU.
pub fn is_cpu(spec: &str) -> bool {
    matches!(spec.parse(), Ok(DeviceSpec::Cpu))
}

/// `drawn`'s weights in `target`, a module of the same architecture built on another device.
///
/// Fresh weights are drawn on the CPU from the run's seed and moved, because every backend has
/// its own random generator: one seed is then one starting point on every backend, and a GPU
/// run can be checked against the CPU's step by step. The record carries the data: `target`'s
/// lazy parameters take the record's values without ever drawing their own.
pub fn move_weights<M: Module>(drawn: M, target: M) -> M {
    target.load_record(drawn.into_record())
}

/// Creates the (non-autodiff) device for a spec.
pub fn select(spec: &str) -> Result<Device, DeviceError> {
    match spec.parse::<DeviceSpec>()? {
        DeviceSpec::Cpu => Ok(Device::flex()),
        DeviceSpec::Wgpu => wgpu(spec),
        DeviceSpec::Vulkan => vulkan(spec),
        DeviceSpec::Cuda(index) => cuda(spec, index),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu(_spec: &str) -> Result<Device, DeviceError> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(spec: &str) -> Result<Device, DeviceError> {
    Err(DeviceError::NotCompiled(spec.to_string(), "wgpu"))
}

#[cfg(feature = "vulkan")]
fn vulkan(_spec: &str) -> Result<Device, DeviceError> {
    Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan(spec: &str) -> Result<Device, DeviceError> {
    Err(DeviceError::NotCompiled(spec.to_string(), "vulkan"))
}

#[cfg(feature = "cuda")]
fn cuda(spec: &str, index: usize) -> Result<Device, DeviceError> {
    // cubecl panics deep inside its runtime when no driver is present: look for one first.
    if !std::path::Path::new("/dev/nvidiactl").exists() {
        return Err(DeviceError::NotPresent(
            spec.to_string(),
            "no NVIDIA driver found (/dev/nvidiactl is missing)".to_string(),
        ));
    }
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(spec: &str, _index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NotCompiled(spec.to_string(), "cuda"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_rejects_unknown_ones() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert_eq!("wgpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Wgpu);
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!(select("cpu").is_ok());
        #[cfg(not(feature = "cuda"))]
        assert!(
            select("cuda:0")
                .unwrap_err()
                .to_string()
                .contains("--features cuda")
        );
    }
}
