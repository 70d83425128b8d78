//! Every fused training op against its composite twin on one device and precision:
//! datm-model's ([`datm_model::fused_check`]) and the row cross-entropy of [`crate::loss`].
//! `datm check-kernels` prints it; on a GPU it is the proof of the CUDA kernels.

use anyhow::Result;
use candle_core::{DType, Device};
use datm_model::fused_check::{compare, sample, OpCheck};

use crate::loss::{composite_cross_entropy_sum, cross_entropy_sum};

/// The precisions the fused ops take on `device`: f32 on the CPU; f32, bf16 and f16 on CUDA.
pub fn dtypes(device: &Device) -> Vec<DType> {
    if device.is_cpu() {
        vec![DType::F32]
    } else {
        vec![DType::F32, DType::BF16, DType::F16]
    }
}

/// Every fused training op on `device` with inputs in `dtype`; the cross-entropy's rows
/// (5000 logits) are longer than a CUDA block.
pub fn run(device: &Device, dtype: DType) -> Result<Vec<OpCheck>> {
    let mut checks = datm_model::fused_check::run(device, dtype)?;
    let vocab = 5000u32;
    let targets: Vec<u32> = (0..6u32).map(|i| (i * 797 + 13) % vocab).collect();
    let logits = sample(&[targets.len(), vocab as usize], 9, dtype, device)?;
    checks.push(compare(
        "cross-entropy",
        &logits,
        |z| cross_entropy_sum(z, &targets),
        |z| composite_cross_entropy_sum(z, &targets),
    )?);
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fused_op_matches_its_twin_on_the_cpu() {
        let checks = run(&Device::Cpu, DType::F32).unwrap();
        assert_eq!(checks.len(), 9);
        for c in &checks {
            assert!(c.passed(), "{c:?}");
            // a fused op that returned its twin's tensor would show zero everywhere
            assert!(
                c.value_error.is_finite() && c.gradient_error.is_finite(),
                "{c:?}"
            );
        }
        assert_eq!(checks[8].op, "cross-entropy");
    }
}
