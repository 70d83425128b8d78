//! `datm check-kernels`: the fused training ops against candle's composite ops on a device
//! (the proof of the CUDA kernels on a GPU).

use anyhow::bail;
use datm_model::device::parse_device;

/// Arguments of `datm check-kernels`.
#[derive(clap::Args)]
pub struct CheckKernelsArgs {
    /// The device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Prints each op's relative errors in each precision the device runs it in; fails if any
/// exceeds its tolerance.
pub fn run(args: CheckKernelsArgs) -> anyhow::Result<()> {
    let device = parse_device(&args.device)?;
    println!(
        "{:<22} {:<5} {:>11} {:>11} {:>9}",
        "op", "dtype", "value err", "grad err", "tolerance"
    );
    let (mut total, mut failed) = (0, 0);
    for dtype in datm_train::kernel_check::dtypes(&device) {
        for c in datm_train::kernel_check::run(&device, dtype)? {
            let verdict = if c.passed() { "ok" } else { "FAILED" };
            println!(
                "{:<22} {:<5} {:>11.3e} {:>11.3e} {:>9.0e} {verdict}",
                c.op,
                c.dtype.as_str(),
                c.value_error,
                c.gradient_error,
                c.tolerance
            );
            total += 1;
            failed += usize::from(!c.passed());
        }
    }
    if failed > 0 {
        bail!("{failed} of {total} fused ops differ from their composite twins beyond tolerance");
    }
    println!(
        "{total} of {total} fused ops match their composite twins on {}",
        args.device
    );
    Ok(())
}
