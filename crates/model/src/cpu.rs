//! The CPU's instruction sets and the one decision of which kernel path runs.
//!
//! datm's CPU kernels (packed GEMM, vectorised math, fused attention) exist once per
//! instruction set, [`Isa`]. The path is the best one the CPU runs, detected at run time,
//! unless the environment variable `DATM_CPU` (`scalar`, `avx2`, `avx2vnni`, `avx512`, `amx`,
//! `neon`; empty or `auto` = detect) forces one. The variable is read once per process; a path
//! the CPU cannot run is an error from [`active`], never a crash.

use std::sync::OnceLock;

use anyhow::{bail, Result};

/// The environment variable that forces a kernel path.
pub const ENV: &str = "DATM_CPU";

/// A kernel path: the instruction set the CPU kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, no SIMD intrinsics: runs everywhere.
    Scalar,
    /// x86-64 AVX2 with FMA (256-bit registers).
    Avx2,
    /// The AVX2 path with an int8 dot product on 256-bit registers (`vpdpbusd`): AVX-VNNI
    /// (Intel's cores from Alder Lake on, which have no AVX-512), or AVX512-VNNI with
    /// AVX512-VL; its int8 products use it ([`Isa::int8_products`]), everything else is
    /// [`Isa::Avx2`]'s.
    Avx2Vnni,
    /// x86-64 AVX-512F (512-bit registers); with AVX512-BF16 where [`Isa::bf16_dot`] says so.
    Avx512,
    /// The AVX-512 path with AVX512-BF16, whose bf16 matrix products run on AMX tiles
    /// (Intel Xeon from Sapphire Rapids on): everything else as [`Isa::Avx512`].
    Amx,
    /// aarch64 Advanced SIMD (128-bit registers).
    Neon,
}

impl Isa {
    /// Every path, slowest first.
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Neon,
        Isa::Avx2,
        Isa::Avx2Vnni,
        Isa::Avx512,
        Isa::Amx,
    ];

    /// The name `DATM_CPU` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx2Vnni => "avx2vnni",
            Isa::Avx512 => "avx512",
            Isa::Amx => "amx",
            Isa::Neon => "neon",
        }
    }

    /// The path named `name` (as `DATM_CPU` spells it).
    pub fn parse(name: &str) -> Result<Isa> {
        match Isa::ALL.into_iter().find(|i| i.name() == name) {
            Some(isa) => Ok(isa),
            None => bail!(
                "{ENV}={name:?} is not a kernel path (expected one of: scalar, avx2, avx2vnni, avx512, amx, neon, auto)"
            ),
        }
    }

    /// Whether this CPU runs the path's instructions.
    pub fn runs_here(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Vnni => {
                Isa::Avx2.runs_here()
                    && (std::is_x86_feature_detected!("avxvnni")
                        || std::is_x86_feature_detected!("avx512vl")
                            && std::is_x86_feature_detected!("avx512vnni"))
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bf16")
                    && crate::amx::tiles_enabled()
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether the path has a bf16 dot-product instruction (AVX512-BF16's `vdpbf16ps`, or
    /// AMX's tiles); other paths widen bf16 weights to f32 as they load them.
    pub fn bf16_dot(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        match self {
            Isa::Avx512 => return self.runs_here() && std::is_x86_feature_detected!("avx512bf16"),
            Isa::Amx => return self.runs_here(),
            _ => {}
        }
        false
    }

    /// Whether the path has AVX512-VNNI's int8 dot product (`vpdpbusd`), for the int8
    /// products of [`crate::kernels::Precision::Int8`].
    pub fn int8_dot(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Isa::Avx512 | Isa::Amx) {
            return self.runs_here()
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni");
        }
        false
    }

    /// Whether the path has the int8 products of [`crate::kernels::Precision::Int8`]: AVX2's
    /// `vpmaddubsw` (the AVX2 and AVX-512 paths), or AVX512-VNNI's `vpdpbusd` where
    /// [`Isa::int8_dot`] says so, or `vpdpbusd` on 256-bit registers ([`Isa::Avx2Vnni`]); on
    /// aarch64, the NEON path where the CPU has the dot-product extension (`sdot`: Apple's
    /// cores, Neoverse N1 and later).
    pub fn int8_products(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Isa::Avx2 | Isa::Avx2Vnni | Isa::Avx512 | Isa::Amx) {
            return self.runs_here()
                && std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma");
        }
        #[cfg(target_arch = "aarch64")]
        if self == Isa::Neon {
            return self.runs_here() && std::arch::is_aarch64_feature_detected!("dotprod");
        }
        false
    }

    /// An error unless the path has the int8 products ([`Isa::int8_products`]).
    pub fn ensure_int8_products(self) -> Result<()> {
        anyhow::ensure!(
            self.int8_products(),
            "int8 products need AVX2, AVX-VNNI, AVX512-VNNI or NEON's dot product, and the {self} kernel path has none"
        );
        Ok(())
    }

    /// Whether a quantized model's weights are packed as bf16 by default on this path: where
    /// the CPU multiplies bf16 faster than f32. That is the AMX path, whose tiles multiply
    /// bf16 an order of magnitude faster than the vector units (Gemma-3-270M decoding with
    /// beams in 5.7 s against 9.3 s in f32 on a Xeon family 6 model 207), and on AMD CPUs
    /// the AVX-512 path with AVX512-BF16 (Zen 4 on), whose `vdpbf16ps` does twice the work
    /// of an f32 FMA per cycle (the same decoding in 7.9–8.1 s against 13.9–14.6 s on a
    /// Zen 4), and the AVX2 path, where bf16 widened on load (a shift) beat int8 blocks
    /// widened exactly (a conversion and a scaling): 14.3–15.3 s against 18.4–19.5 s on that
    /// Zen 4. Intel's `vdpbf16ps` runs at half its f32 FMA rate, and its cores widened bf16
    /// slower than int8 blocks, so every other path packs a quantized model as `--dtype f32`
    /// does, int8 blocks widened exactly (14–16 s with `vdpbf16ps` against 10.5–10.9 s so on
    /// that Xeon's AVX-512 path, 18.0 s widened bf16 against 16.7 s on its AVX2 path).
    /// Decided by the CPU alone, never by timing, so a machine's outputs do not change from
    /// run to run.
    pub fn packs_bf16_by_default(self) -> bool {
        match self {
            Isa::Amx => true,
            Isa::Avx512 => self.bf16_dot() && amd(),
            Isa::Avx2 | Isa::Avx2Vnni => amd(),
            _ => false,
        }
    }
}

impl Isa {
    /// Whether a quantized model's int8 blocks (groups of 32 inputs, or Q6_K's 16) are
    /// packed for the int8 products ([`crate::kernels::Precision::Int8`]) by default: on
    /// AMD CPUs, on the AVX-512 path with AVX512-VNNI (Zen 4 on), whose `vpdpbusd` does
    /// twice the multiplies of `vdpbf16ps` per instruction at the same rate (Gemma-3-270M
    /// decoding with beams in 6.4 s against 7.7 s with bf16 panels on a Zen 4, at 840
    /// against 1,055 MB, as good against references, BLEU and chrF within noise of f32 and
    /// bf16 on 200 messages, but further from f32's exact outputs: 81% the same against
    /// 93%), and on the AVX2 path, whose `vpmaddubsw` does four times the multiplies of an
    /// f32 FMA (the same decoding in 11.1–11.7 s against 13.9–14.4 s with widened bf16 on
    /// that Zen 4 held to AVX2, at 840 against 1,057 MB; its products are the AVX-512
    /// path's int8 products, bit for bit), and on the NEON path where the CPU has `sdot`,
    /// which multiplies 16 int8 pairs where `fmla` multiplies 4 f32 pairs, issued at the
    /// same rate on Apple's and Neoverse cores (by their published instruction tables:
    /// unmeasured here, where aarch64 runs only under qemu; the products are the x86 paths'
    /// bit for bit), and on the AVX2 path with 256-bit VNNI on every CPU, whose `vpdpbusd`
    /// multiplies four times the pairs of an f32 FMA with no instructions to sum them
    /// (Intel's cores from Alder Lake on issue both at the same rate by their instruction
    /// tables, unmeasured here; on a Zen 4 through the EVEX encoding the decoding above
    /// takes 8.2–9.2 s against 12.7–13.7 s with `vpmaddubsw`, whole process, with the same
    /// outputs). Other weights, and other paths, pack as [`Isa::packs_bf16_by_default`]
    /// says (Intel's cores without VNNI are unmeasured with int8 here).
    pub fn packs_int8_by_default(self) -> bool {
        match self {
            Isa::Avx2Vnni => self.int8_products(),
            Isa::Avx512 => self.int8_dot() && amd(),
            Isa::Avx2 => self.int8_products() && amd(),
            Isa::Neon => self.int8_products(),
            _ => false,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the CPU is AMD's (CPUID's vendor string `AuthenticAMD`).
#[cfg(target_arch = "x86_64")]
fn amd() -> bool {
    let id = std::arch::x86_64::__cpuid(0);
    let vendor = [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes).concat();
    vendor == b"AuthenticAMD"
}

/// Whether the CPU is AMD's: never off x86-64.
#[cfg(not(target_arch = "x86_64"))]
fn amd() -> bool {
    false
}

/// The paths this CPU runs, slowest first (always starts with [`Isa::Scalar`]).
pub fn available() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.runs_here()).collect()
}

/// The fastest path this CPU runs.
pub fn detected() -> Isa {
    available().pop().unwrap_or(Isa::Scalar)
}

/// The path to run: `DATM_CPU` if set, else [`detected`]; read once per process. An error
/// when `DATM_CPU` names no path or one this CPU cannot run.
pub fn active() -> Result<Isa> {
    static ACTIVE: OnceLock<Result<Isa, String>> = OnceLock::new();
    ACTIVE
        .get_or_init(|| choose(std::env::var(ENV).ok().as_deref()).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// [`active`], or [`Isa::Scalar`] where `DATM_CPU` is invalid: for the element-wise ops
/// that cannot fail. Loading a model checks [`active`] first, so the fallback is never
/// silent there.
pub fn isa() -> Isa {
    active().unwrap_or(Isa::Scalar)
}

/// The path a `DATM_CPU` value asks for (`None`, empty or `auto`: the detected one).
fn choose(value: Option<&str>) -> Result<Isa> {
    let name = value.map(str::trim).unwrap_or("");
    if name.is_empty() || name == "auto" {
        return Ok(detected());
    }
    let isa = Isa::parse(&name.to_ascii_lowercase())?;
    if !isa.runs_here() {
        bail!(
            "{ENV}={name}: this CPU cannot run the {isa} kernels (it runs: {})",
            available()
                .iter()
                .map(|i| i.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(isa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_values_are_parsed_and_checked() {
        assert_eq!(choose(None).unwrap(), detected());
        assert_eq!(choose(Some(" auto ")).unwrap(), detected());
        assert_eq!(choose(Some("SCALAR")).unwrap(), Isa::Scalar);
        let err = choose(Some("sse9")).unwrap_err().to_string();
        assert!(
            err.contains("DATM_CPU=\"sse9\"") && err.contains("avx512"),
            "{err}"
        );
        for isa in Isa::ALL {
            match choose(Some(isa.name())) {
                Ok(got) => assert!(got == isa && isa.runs_here()),
                Err(e) => {
                    assert!(!isa.runs_here());
                    assert!(e.to_string().contains("cannot run the"), "{e}");
                }
            }
        }
    }

    /// Linux's flags of the first CPU, and whether its vendor is AMD.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn cpuinfo() -> (String, bool) {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let field = |name: &str| {
            let line = info.lines().find(|l| l.starts_with(name)).unwrap();
            line.split_once(':').unwrap().1.trim().to_string()
        };
        (field("flags"), field("vendor_id") == "AuthenticAMD")
    }

    /// bf16 by default on the AMX path, on the AVX-512 path exactly where Linux reports an
    /// AMD CPU with AVX512-BF16, and on the AVX2 paths exactly where it reports an AMD CPU.
    #[test]
    fn bf16_by_default_where_bf16_outpaces_f32() {
        for isa in [Isa::Scalar, Isa::Neon] {
            assert!(!isa.packs_bf16_by_default(), "{isa}");
        }
        assert!(Isa::Amx.packs_bf16_by_default());
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let (flags, amd) = cpuinfo();
            let has = |f: &str| flags.split_whitespace().any(|x| x == f);
            let want = amd && has("avx512f") && has("avx512_bf16");
            assert_eq!(Isa::Avx512.packs_bf16_by_default(), want, "{flags}");
            assert_eq!(Isa::Avx2.packs_bf16_by_default(), amd);
            assert_eq!(Isa::Avx2Vnni.packs_bf16_by_default(), amd);
        }
    }

    /// int8 products on the AVX2 and AVX-512 paths where the CPU has AVX2 and FMA, the
    /// VNNI kernel where Linux reports AVX512-VNNI (and AVX512-BW), on the NEON path where
    /// the CPU has the dot product (never off aarch64), on the AVX2 path with 256-bit VNNI
    /// exactly where Linux reports AVX-VNNI or AVX512-VNNI with AVX512-VL; by default on AMD
    /// CPUs on the AVX2 path and on the AVX-512 path with AVX512-VNNI, on the AVX2 path with
    /// 256-bit VNNI, and on NEON with the dot product, on no other path.
    #[test]
    fn int8_by_default_on_amd_avx2_avx512_vnni_and_neon_dot() {
        for isa in [Isa::Scalar, Isa::Amx] {
            assert!(!isa.packs_int8_by_default(), "{isa}");
        }
        assert!(!Isa::Scalar.int8_products() && !Isa::Scalar.int8_dot());
        assert!(!Isa::Neon.int8_dot());
        assert_eq!(Isa::Neon.packs_int8_by_default(), Isa::Neon.int8_products());
        #[cfg(not(target_arch = "aarch64"))]
        assert!(!Isa::Neon.int8_products());
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let (flags, amd) = cpuinfo();
            let has = |f: &str| flags.split_whitespace().any(|x| x == f);
            let avx2 = has("avx2") && has("fma");
            assert_eq!(Isa::Avx2.int8_products(), avx2, "{flags}");
            assert_eq!(Isa::Avx2.packs_int8_by_default(), avx2 && amd, "{flags}");
            let avx512 = avx2 && has("avx512f");
            assert_eq!(Isa::Avx512.int8_products(), avx512, "{flags}");
            let vnni = has("avx512f") && has("avx512bw") && has("avx512_vnni");
            assert_eq!(Isa::Avx512.int8_dot(), vnni, "{flags}");
            let want = vnni && amd;
            assert_eq!(Isa::Avx512.packs_int8_by_default(), want, "{flags}");
            let vnni256 = avx2 && (has("avx_vnni") || has("avx512vl") && has("avx512_vnni"));
            assert_eq!(Isa::Avx2Vnni.runs_here(), vnni256, "{flags}");
            assert_eq!(Isa::Avx2Vnni.int8_products(), vnni256, "{flags}");
            assert_eq!(Isa::Avx2Vnni.packs_int8_by_default(), vnni256, "{flags}");
            assert!(!Isa::Avx2Vnni.int8_dot());
        }
    }

    /// The AMX path runs exactly where Linux reports AMX-BF16, AMX-TILE and AVX512-BF16 (the
    /// kernels ask for the tile data at run time; kernels from 5.16 on grant it).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn amx_path_runs_where_linux_reports_the_tiles() {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let flags = info.lines().find(|l| l.starts_with("flags")).unwrap();
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let want = has("amx_bf16") && has("amx_tile") && has("avx512_bf16");
        assert_eq!(Isa::Amx.runs_here(), want, "{flags}");
        if want {
            assert_eq!(detected(), Isa::Amx);
        }
    }

    #[test]
    fn scalar_runs_everywhere_and_detection_picks_the_best() {
        let paths = available();
        assert_eq!(paths[0], Isa::Scalar);
        assert_eq!(detected(), *paths.last().unwrap());
        #[cfg(target_arch = "aarch64")]
        assert!(paths.contains(&Isa::Neon));
    }
}
