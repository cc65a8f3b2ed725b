//! Choice of compute device.

use candle_core::Device;

use crate::PipelineError;

/// Accepted device names.
pub const DEVICE_NAMES: &[&str] = &["cpu", "cuda", "cuda:N"];

/// `cpu`, `cuda` (= `cuda:0`) or `cuda:N`; CUDA needs a build with `--features cuda`.
pub fn device(name: &str) -> Result<Device, PipelineError> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return Err(PipelineError::bad("device", format!("unknown device \"{name}\"; accepted: {}", DEVICE_NAMES.join(", "))))
            }
        },
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(PipelineError::Device(format!(
            "device \"{name}\" needs CUDA: build with `--features cuda` on a machine with an NVIDIA GPU"
        )));
    }
    Device::new_cuda(ordinal).map_err(|e| PipelineError::Device(format!("cannot open {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_cpu_and_unknown_names_list_the_accepted_ones() {
        assert!(device("cpu").unwrap().is_cpu());
        for bad in ["gpu", "cuda:x", "cpu:0", "cuda:"] {
            let msg = device(bad).unwrap_err().to_string();
            assert!(msg.contains(bad) && DEVICE_NAMES.iter().all(|n| msg.contains(n)), "{msg}");
        }
    }
}
