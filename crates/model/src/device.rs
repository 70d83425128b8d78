//! Device names as users write them (`cpu`, `cuda`, `cuda:N`), for every command that runs
//! a model.

use anyhow::{bail, Context, Result};
use candle_core::Device;

/// Checks that `name` is `cpu`, `cuda` or `cuda:N`, without opening the device.
pub fn check_device_name(name: &str) -> Result<()> {
    cuda_ordinal(name).map(|_| ())
}

/// The device called `name`: `cpu`, `cuda` (the first GPU) or `cuda:N`. A CUDA device
/// needs a build with the `cuda` feature and the GPU present.
pub fn parse_device(name: &str) -> Result<Device> {
    match cuda_ordinal(name)? {
        None => Ok(Device::Cpu),
        Some(n) => Device::new_cuda(n).with_context(|| {
            format!(
                "device {name}: no such CUDA device, or datm was built without the `cuda` feature"
            )
        }),
    }
}

/// `None` for the CPU, the GPU's ordinal for a CUDA name.
fn cuda_ordinal(name: &str) -> Result<Option<usize>> {
    match name {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Some(n)),
            _ => bail!("unknown device {name:?} (expected cpu, cuda or cuda:N)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert_eq!(cuda_ordinal("cuda").unwrap(), Some(0));
        assert_eq!(cuda_ordinal("cuda:3").unwrap(), Some(3));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let e = check_device_name(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda or cuda:N"), "{bad}: {e}");
        }
    }
}
