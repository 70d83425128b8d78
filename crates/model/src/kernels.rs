//! Inference matmul kernels for the CPU: `x · wᵀ` with the weight packed once, at load
//! time, into the layout the kernel streams, on every kernel path of [`crate::cpu`].
//!
//! Decoding with beams multiplies a few dozen rows (prompts × beams) by every weight matrix
//! of the model at each step, the Gemma-3 LM head alone being 262 144 × 640. candle's CPU
//! matmuls re-pack the weight at every call and reach well under half of the CPU's FMA peak
//! on such shapes. [`PackedMatrix`] stores the weight in panels of `NR` output columns,
//! input-feature-major, so that the kernel keeps a tile of up to [`MR`] input rows × `NR`
//! columns in accumulator registers, loads each weight vector once per tile and broadcasts
//! the input values. The tile is written once over [`crate::simd::Vector`]; its width
//! follows the registers: 64 columns (4 × 16 lanes, 24 accumulators) with AVX-512,
//! 16 with AVX2 (2 × 8 lanes: 12 accumulators of the 16 ymm registers), NEON (4 × 4 lanes)
//! and the portable scalar path. Long batches (an encoder's hundreds of tokens) run in
//! groups of panels and blocks of rows, so that inputs and partial sums stay in cache too.
//!
//! Two precisions: [`Precision::F32`] (exact f32 products, one FMA chain per output over the
//! input features in order, so every path gives the same bits) for `--dtype f32` inference,
//! and [`Precision::Bf16`] (weights and inputs rounded to bf16, products summed in f32) for
//! the default weights of quantized models: pairwise by `vdpbf16ps` where the CPU has
//! AVX512-BF16, elsewhere one FMA chain over bf16 weights widened to f32 as they are loaded
//! (half the memory traffic of f32). A GGUF Q8_0 weight in f32 (Gemma-3's tied LM head with
//! `--dtype f32`) keeps its int8 values and block scales, a quarter of the f32 panels' bytes,
//! and each panel is widened to f32 in cache just before its products: `value × scale` is
//! exact, so the outputs are the f32 panels' bits. The kernels have no backward pass of their own;
//! training's frozen f32 weights run on them as two packs, `W` for the forward product and
//! `Wᵀ` ([`PackedMatrix::pack_transposed`]) for the backward one (`lora.rs`).

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Range;

use anyhow::{ensure, Result};
use candle_core::quantized::GgmlDType;
use rayon::prelude::*;

use crate::aligned::Aligned;
use crate::amx;
use crate::blocks::{f16_at, IntBlocks};
use crate::cpu::{self, Isa};
use crate::simd::{self, Task, Vector};
use crate::vmath;

mod int8;

/// What follows a product with a bias ([`PackedMatrix::matmul_t_bias_into`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing: the sums plus the bias.
    Identity,
    /// GELU with the exact erf ([`crate::vmath::gelu_erf`]).
    GeluErf,
}

/// Input rows per register tile.
pub const MR: usize = 6;

/// Arithmetic of a packed matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights and inputs, f32 FMAs.
    F32,
    /// bf16 weights and inputs, f32 accumulation.
    Bf16,
    /// Inference only, for GGUF weights of int8 blocks (groups of 32 inputs, or Q6_K's 16)
    /// on the paths with int8 products ([`Isa::int8_products`]): the weights' int8 values
    /// times the inputs rounded to int8 per group of 32 (llama.cpp's Q8 inputs), exact
    /// int32 sums per weight group (`vpdpbusd` with VNNI, AVX2's `vpmaddubsw`, NEON's
    /// `sdot`), scaled into f32 ([`PackedMatrix::pack_int_blocks`]).
    Int8,
}

impl Precision {
    /// What the weights that int8 products do not take (dense ones, and GGUF types other
    /// than int8 blocks) pack as beside them: bf16 where the path multiplies bf16 faster
    /// ([`Isa::packs_bf16_by_default`]), else f32.
    pub fn int8_fallback() -> Result<Precision> {
        Ok(if cpu::active()?.packs_bf16_by_default() {
            Precision::Bf16
        } else {
            Precision::F32
        })
    }
}

#[derive(Debug, Clone)]
enum Panels {
    /// `[panel][k][NR]`.
    F32(Aligned<f32>),
    /// `[panel][k][NR]`, or with `vdpbf16ps` `[panel][k / 2][NR][2]` (each 32-bit lane holds
    /// two consecutive input features).
    Bf16(Aligned<u16>),
    /// A GGUF weight of int8 blocks ([`IntBlocks`]) in f32 panels kept as its int8 values
    /// `[panel][k][NR]` and group scales (and offsets): each weight is `value × scale −
    /// offset` exactly, widened to f32 a block of a panel at a time as the product runs (a
    /// quarter of the f32 panels' memory or less).
    Int8 {
        values: Aligned<i8>,
        scales: BlockScales,
    },
    /// A GGUF weight of int8 blocks for the int8 products of [`Precision::Int8`].
    Int8Products(Box<int8::Int8Panels>),
}

/// Where the group scales of a [`Panels::Int8`] matrix are: a group is `group` consecutive
/// inputs of one output (the weight as stored), or, transposed (Q8_0 only), 32 consecutive
/// outputs of one input.
#[derive(Debug, Clone)]
enum BlockScales {
    /// `[panel][k / group][NR]`: one scale (and offset) per column and `group` input features.
    Columns(GroupScales),
    /// `[k][n / 32]`: one scale per input feature and 32 columns (`n` a multiple of 32).
    Features(Vec<f32>),
}

/// The scales (and offsets) of groups of `group` input features of each column, `[panel][k /
/// group][NR]`.
#[derive(Debug, Clone)]
struct GroupScales {
    scales: Aligned<f32>,
    offsets: Option<Aligned<f32>>,
    group: usize,
}

impl GroupScales {
    /// Where the scale of input feature `j` of panel `p` (of `nr` columns, `k` features)
    /// sits, for its first column.
    fn row(&self, p: usize, nr: usize, k: usize, j: usize) -> usize {
        (p * (k / self.group) + j / self.group) * nr
    }
}

impl BlockScales {
    /// Weight `value` of column `c` of panel `p` (of `nr` columns), input feature `j`, in f32.
    fn weight(
        &self,
        value: i8,
        p: usize,
        nr: usize,
        (n, k): (usize, usize),
        c: usize,
        j: usize,
    ) -> f32 {
        match self {
            BlockScales::Columns(g) => {
                let at = g.row(p, nr, k, j) + c;
                let w = f32::from(value) * g.scales[at];
                g.offsets.as_ref().map_or(w, |o| w - o[at])
            }
            BlockScales::Features(s) => f32::from(value) * s[j * (n / 32) + (p * nr + c) / 32],
        }
    }

    /// Widens steps `j0 .. j0 + steps` of panel `p` (of `V::NR` columns; `values` its
    /// `[steps][V::NR]` int8 values) of a matrix of `n` columns and `k` input features to
    /// f32 in `out`: each value times its scale (minus its offset), a register at a time (a
    /// register's lanes share a block of 32 columns).
    ///
    /// # Safety
    /// The CPU runs `V`; `values` and `out` hold `steps × V::NR` values.
    #[inline(always)]
    unsafe fn widen<V: Vector>(
        &self,
        p: usize,
        (n, k): (usize, usize),
        j0: usize,
        values: &[i8],
        out: &mut [f32],
    ) {
        let (nr, lanes) = (V::NR, V::LANES);
        let count = out.len() / nr;
        let steps = (0..count).map(|j| j * nr);
        let (values, out) = (values.as_ptr(), out.as_mut_ptr());
        // SAFETY: the caller's contract; every scale index is inside the scales (a
        // `Features` register past the last column block takes scale 0: its values are 0).
        unsafe {
            match self {
                BlockScales::Columns(g) => {
                    // A group's steps at a time: one scale row (a division) per group.
                    let mut j = 0;
                    while j < count {
                        let end = count.min(j + g.group - (j0 + j) % g.group);
                        let row = g.row(p, nr, k, j0 + j);
                        let (mut scale, mut offset) = (V::row(0.0), V::row(0.0));
                        for (i, (s, o)) in
                            scale.as_mut().iter_mut().zip(offset.as_mut()).enumerate()
                        {
                            *s = V::load(g.scales.as_ptr().add(row + i * lanes));
                            if let Some(offsets) = &g.offsets {
                                *o = V::load(offsets.as_ptr().add(row + i * lanes));
                            }
                        }
                        let shifted = g.offsets.is_some();
                        for at in (j..end).map(|j| j * nr) {
                            for (i, (s, o)) in
                                scale.as_ref().iter().zip(offset.as_ref()).enumerate()
                            {
                                let w = V::load_i8(values.add(at + i * lanes)).mul(*s);
                                let w = if shifted { w.sub(*o) } else { w };
                                w.store(out.add(at + i * lanes));
                            }
                        }
                        j = end;
                    }
                }
                BlockScales::Features(s) => {
                    for (j, at) in steps.enumerate() {
                        let blocks = &s[(j0 + j) * (n / 32)..][..n / 32];
                        for l in (0..nr).step_by(lanes) {
                            let scale = blocks.get((p * nr + l) / 32).copied().unwrap_or(0.0);
                            let w = V::load_i8(values.add(at + l)).mul(V::splat(scale));
                            w.store(out.add(at + l));
                        }
                    }
                }
            }
        }
    }
}

/// Where the values of a panel sit.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Output columns per panel.
    nr: usize,
    /// The order of a panel's values.
    order: Order,
}

/// The order of the values in a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// `[k][nr]`: one input feature after the other.
    Features,
    /// `[k / 2][nr][2]`: bf16 input features in pairs, each 32-bit lane holding two
    /// consecutive ones (`vdpbf16ps`).
    Pairs,
    /// AMX weight tiles ([`amx::index`]).
    Tiles,
}

impl Layout {
    fn of(isa: Isa, precision: Precision) -> Layout {
        let nr = simd::run(isa, TileWidth);
        match precision {
            Precision::Bf16 if isa == Isa::Amx => Layout {
                nr: amx::NR,
                order: Order::Tiles,
            },
            Precision::Bf16 if isa.bf16_dot() => Layout {
                nr,
                order: Order::Pairs,
            },
            _ => Layout {
                nr,
                order: Order::Features,
            },
        }
    }

    /// Where weight column `c` of a panel (`0..nr`), input feature `kk`, sits in the panel.
    fn index(self, c: usize, kk: usize) -> usize {
        match self.order {
            Order::Features => kk * self.nr + c,
            Order::Pairs => ((kk / 2) * self.nr + c) * 2 + kk % 2,
            Order::Tiles => amx::index(c, kk),
        }
    }

    /// The input features a panel holds for `k` of a weight: AMX tiles take whole steps
    /// of [`amx::STEP`], zero past `k`.
    fn padded(self, k: usize) -> usize {
        match self.order {
            Order::Tiles => k.next_multiple_of(amx::STEP),
            _ => k,
        }
    }
}

/// The GEMM tile width of a path.
struct TileWidth;

impl Task for TileWidth {
    type Out = usize;
    #[inline(always)]
    unsafe fn run<V: Vector>(self) -> usize {
        V::NR
    }
}

/// A `[n, k]` weight packed for [`PackedMatrix::matmul_t`] on one kernel path.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    n: usize,
    k: usize,
    /// Input features per panel column as packed ([`Layout::padded`]).
    kp: usize,
    isa: Isa,
    layout: Layout,
    panels: Panels,
}

/// Bytes per GGUF Q8_0 block: an f16 scale and 32 int8 values.
const Q8_0_BLOCK: usize = 34;

/// A row-major `[n, k]` weight of GGUF Q8_0 blocks, read in place.
struct Q8Blocks<'a> {
    blocks: &'a [u8],
    /// Blocks per row.
    per_row: usize,
}

impl<'a> Q8Blocks<'a> {
    /// Checks the size of `blocks` for a non-empty `[n, k]` weight ([`IntBlocks::new`]).
    fn new(blocks: &'a [u8], n: usize, k: usize) -> Result<Self> {
        IntBlocks::new(GgmlDType::Q8_0, blocks, n, k)?;
        Ok(Q8Blocks {
            blocks,
            per_row: k / 32,
        })
    }

    /// The int8 value of row `r`, input `kk`.
    fn value(&self, r: usize, kk: usize) -> i8 {
        self.blocks[(r * self.per_row + kk / 32) * Q8_0_BLOCK + 2 + kk % 32] as i8
    }

    /// The value of row `r`, input `kk` times its block's scale in f32, as dequantizing
    /// gives it.
    fn dequantized(&self, r: usize, kk: usize) -> f32 {
        f32::from(self.value(r, kk)) * self.scale(r, kk / 32)
    }

    /// The scale of row `r`, block `j` (its f16, widened).
    fn scale(&self, r: usize, j: usize) -> f32 {
        f16_at(self.blocks, (r * self.per_row + j) * Q8_0_BLOCK)
    }
}

/// Checks that `isa` runs here and that `w` holds a non-empty `[n, k]` weight.
fn check_weight(isa: Isa, w: &[f32], n: usize, k: usize) -> Result<()> {
    ensure!(isa.runs_here(), "this CPU cannot run the {isa} kernels");
    ensure!(
        w.len() == n * k,
        "weight has {} values, expected {n}×{k}",
        w.len()
    );
    ensure!(n > 0 && k > 0, "cannot pack an empty {n}×{k} weight");
    Ok(())
}

fn to_bf16(v: f32) -> u16 {
    half::bf16::from_f32(v).to_bits()
}

impl PackedMatrix {
    /// Packs a row-major `[n, k]` f32 weight for the active kernel path ([`cpu::active`]);
    /// bf16 needs an even `k`.
    pub fn pack(w: &[f32], n: usize, k: usize, precision: Precision) -> Result<Self> {
        Self::pack_for(cpu::active()?, w, n, k, precision)
    }

    /// Like [`PackedMatrix::pack`], for kernel path `isa`.
    pub fn pack_for(isa: Isa, w: &[f32], n: usize, k: usize, precision: Precision) -> Result<Self> {
        check_weight(isa, w, n, k)?;
        ensure!(
            precision != Precision::Int8,
            "int8 products pack GGUF int8 blocks only (pack_int_blocks)"
        );
        if precision == Precision::Bf16 {
            ensure!(
                k.is_multiple_of(2),
                "the bf16 kernel needs an even input size, got {k}"
            );
            let row = |c: usize, row: &mut [f32]| row.copy_from_slice(&w[c * k..][..k]);
            return Ok(Self::bf16_from_rows(isa, n, k, row));
        }
        let layout = Layout::of(isa, precision);
        Ok(PackedMatrix {
            n,
            k,
            kp: layout.padded(k),
            isa,
            layout,
            panels: Panels::F32(pack_panels(n, k, layout, |c, kk| w[c * k + kk])),
        })
    }

    /// An `[n, k]` weight (`k` even) packed in bf16 for path `isa`; `row(c, buf)` writes
    /// weight row `c` into `buf` (`k` values).
    fn bf16_from_rows(
        isa: Isa,
        n: usize,
        k: usize,
        row: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Self {
        let layout = Layout::of(isa, Precision::Bf16);
        let kp = layout.padded(k);
        PackedMatrix {
            n,
            k,
            kp,
            isa,
            layout,
            panels: Panels::Bf16(pack_bf16_rows(n, k, kp, layout, row)),
        }
    }

    /// Packs a row-major `[n, k]` weight of GGUF Q8_0 blocks (`blocks`: `n × k / 32` blocks
    /// of 34 bytes, row after row) for the active kernel path, without an f32 copy of it
    /// (Gemma-3's tied LM head: 671 MB): [`PackedMatrix::pack_int_blocks`] of Q8_0.
    pub fn pack_q8_0(blocks: &[u8], n: usize, k: usize, precision: Precision) -> Result<Self> {
        Self::pack_int_blocks(GgmlDType::Q8_0, blocks, n, k, precision)
    }

    /// Packs a row-major `[n, k]` weight of GGUF blocks of type `dtype` that [`IntBlocks`]
    /// reads (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K; `blocks` the tensor's bytes, row after row)
    /// for the active kernel path, without an f32 copy of it: in f32 as its int8 values and
    /// group scales (and offsets), whose products equal [`PackedMatrix::pack`]'s of the
    /// weight candle dequantizes it to, bit for bit, from a quarter of the bytes or less; in
    /// bf16 as [`PackedMatrix::pack`]'s panels of that weight, dequantized a row at a time.
    pub fn pack_int_blocks(
        dtype: GgmlDType,
        blocks: &[u8],
        n: usize,
        k: usize,
        precision: Precision,
    ) -> Result<Self> {
        Self::pack_int_blocks_for(cpu::active()?, dtype, blocks, n, k, precision)
    }

    /// Like [`PackedMatrix::pack_int_blocks`], for kernel path `isa`.
    pub fn pack_int_blocks_for(
        isa: Isa,
        dtype: GgmlDType,
        blocks: &[u8],
        n: usize,
        k: usize,
        precision: Precision,
    ) -> Result<Self> {
        ensure!(isa.runs_here(), "this CPU cannot run the {isa} kernels");
        let blocks = IntBlocks::new(dtype, blocks, n, k)?;
        if precision == Precision::Int8 {
            isa.ensure_int8_products()?;
            let panels = int8::Int8Panels::pack(isa, &blocks)?;
            return Ok(PackedMatrix {
                n,
                k,
                kp: k,
                isa,
                layout: Layout {
                    nr: panels.nr(),
                    order: Order::Features,
                },
                panels: Panels::Int8Products(Box::new(panels)),
            });
        }
        if precision == Precision::Bf16 {
            // `k` is whole blocks of 32 or 256 inputs, so even.
            let row = |c: usize, row: &mut [f32]| blocks.dequantize_row(c, row);
            return Ok(Self::bf16_from_rows(isa, n, k, row));
        }
        let layout = Layout::of(isa, Precision::F32);
        let (values, scales, offsets) = decode_panels::<_, 1>(&blocks, layout.nr, |v| v);
        debug_assert_eq!(layout.order, Order::Features, "f32 panels are [k][nr]");
        let group = blocks.group();
        let scales = BlockScales::Columns(GroupScales {
            scales,
            offsets: blocks.has_offsets().then_some(offsets),
            group,
        });
        Ok(PackedMatrix {
            n,
            k,
            kp: k,
            isa,
            layout,
            panels: Panels::Int8 { values, scales },
        })
    }

    /// Packs the transpose `[k, n]` of a row-major `[n, k]` weight of GGUF Q8_0 blocks for
    /// the active kernel path, so that [`PackedMatrix::matmul_t`] computes `x · w` (`x`
    /// `[m, n]`): the backward pass through a frozen Q8_0 layer. In f32 it is kept as its
    /// int8 values and scales, with the bits of [`PackedMatrix::pack_transposed`] of the
    /// dequantized weight; in bf16 it is that pack's matrix, without an f32 copy.
    pub fn pack_q8_0_transposed(
        blocks: &[u8],
        n: usize,
        k: usize,
        precision: Precision,
    ) -> Result<Self> {
        Self::pack_q8_0_transposed_for(cpu::active()?, blocks, n, k, precision)
    }

    /// Like [`PackedMatrix::pack_q8_0_transposed`], for kernel path `isa`.
    pub fn pack_q8_0_transposed_for(
        isa: Isa,
        blocks: &[u8],
        n: usize,
        k: usize,
        precision: Precision,
    ) -> Result<Self> {
        ensure!(isa.runs_here(), "this CPU cannot run the {isa} kernels");
        let q8 = Q8Blocks::new(blocks, n, k)?;
        if precision == Precision::Bf16 {
            return Self::transposed(isa, (n, k), precision, |r, c0, out| {
                for (c, o) in (c0..).zip(out) {
                    *o = q8.dequantized(r, c);
                }
            });
        }
        let layout = Layout::of(isa, Precision::F32);
        let values = pack_panels(k, n, layout, |c, kk| q8.value(kk, c));
        let scales = (0..n * k / 32).map(|i| q8.scale(i / (k / 32), i % (k / 32)));
        let scales = BlockScales::Features(scales.collect());
        Ok(PackedMatrix {
            n: k,
            k: n,
            kp: n,
            isa,
            layout,
            panels: Panels::Int8 { values, scales },
        })
    }

    /// Packs the transpose `[k, n]` of a row-major `[n, k]` f32 weight for the active kernel
    /// path, so that [`PackedMatrix::matmul_t`] computes `x · w` (`x` `[m, n]`): the backward
    /// pass through a frozen layer. In f32 each output is one FMA chain; in bf16 (`n` even)
    /// the weight is rounded as [`PackedMatrix::pack`] rounds it.
    pub fn pack_transposed(w: &[f32], n: usize, k: usize, precision: Precision) -> Result<Self> {
        Self::pack_transposed_for(cpu::active()?, w, n, k, precision)
    }

    /// Like [`PackedMatrix::pack_transposed`], for kernel path `isa`.
    pub fn pack_transposed_for(
        isa: Isa,
        w: &[f32],
        n: usize,
        k: usize,
        precision: Precision,
    ) -> Result<Self> {
        check_weight(isa, w, n, k)?;
        Self::transposed(isa, (n, k), precision, |r, c0, out| {
            out.copy_from_slice(&w[r * k + c0..][..out.len()]);
        })
    }

    /// The transpose `[k, n]` of an `[n, k]` weight packed in `precision`, where
    /// `part(r, c0, out)` writes the weight's row `r`, columns `c0 ..`, into `out`.
    fn transposed(
        isa: Isa,
        (n, k): (usize, usize),
        precision: Precision,
        part: impl Fn(usize, usize, &mut [f32]) + Sync,
    ) -> Result<Self> {
        let layout = Layout::of(isa, precision);
        let kp = layout.padded(n);
        let at = |c: usize, kk: usize| {
            let mut v = [0f32];
            part(kk, c, &mut v);
            v[0]
        };
        let panels = match precision {
            Precision::F32 => Panels::F32(pack_panels(k, n, layout, at)),
            Precision::Bf16 => {
                ensure!(
                    n.is_multiple_of(2),
                    "the bf16 kernel needs an even input size, got {n} (a transposed {n}×{k})"
                );
                Panels::Bf16(match layout.order {
                    Order::Tiles => pack_tiles_by_feature(k, n, kp, part),
                    _ => pack_panels(k, n, layout, |c, kk| to_bf16(at(c, kk))),
                })
            }
            Precision::Int8 => anyhow::bail!("int8 products have no transposed packs"),
        };
        Ok(PackedMatrix {
            n: k,
            k: n,
            kp,
            isa,
            layout,
            panels,
        })
    }

    /// Output features (rows of the weight).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The kernel path this matrix was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The arithmetic this matrix was packed for.
    pub fn precision(&self) -> Precision {
        match self.panels {
            Panels::F32(_) | Panels::Int8 { .. } => Precision::F32,
            Panels::Bf16(_) => Precision::Bf16,
            Panels::Int8Products(_) => Precision::Int8,
        }
    }

    /// The weight back as a row-major `[n, k]` f32 tensor (bf16 values widened exactly).
    pub fn to_tensor(&self) -> Result<candle_core::Tensor> {
        let (n, k, nr) = (self.n, self.k, self.layout.nr);
        let v: Vec<f32> = (0..n * k)
            .into_par_iter()
            .map(|i| {
                let (col, kk) = (i / k, i % k);
                let at = (col / nr) * nr * self.kp + self.layout.index(col % nr, kk);
                match &self.panels {
                    Panels::F32(d) => d[at],
                    Panels::Bf16(d) => half::bf16::from_bits(d[at]).to_f32(),
                    Panels::Int8 { values, scales } => {
                        scales.weight(values[at], col / nr, nr, (n, k), col % nr, kk)
                    }
                    Panels::Int8Products(p) => p.weight(col, kk),
                }
            })
            .collect();
        Ok(candle_core::Tensor::from_vec(
            v,
            (n, k),
            &candle_core::Device::Cpu,
        )?)
    }

    /// `x · wᵀ` for row-major `x` `[m, k]`; returns row-major `[m, n]`, in a new buffer that
    /// is not zeroed first (the kernels store every output).
    pub fn matmul_t(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let len = m * self.n;
        let mut out = Vec::with_capacity(len);
        self.product(x, m, None, false, &mut out.spare_capacity_mut()[..len])?;
        // SAFETY: `product` succeeded, so it stored all `m × n` outputs.
        unsafe { out.set_len(len) };
        Ok(out)
    }

    /// Like [`PackedMatrix::matmul_t`], writing into `out` (`[m, n]`, overwritten): a
    /// buffer reused across calls spares the kernel the page faults of a fresh one.
    pub fn matmul_t_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        self.product(x, m, None, false, as_uninit(out))
    }

    /// `act(x · wᵀ + bias)` (`bias`: `n` values added to every row) into `out` like
    /// [`PackedMatrix::matmul_t_into`]: each output is the FMA chain of `matmul_t` plus its
    /// bias, added as the tile is stored; the activation follows on each tile right after
    /// it is stored, while it is in cache (the bits of the activation afterwards, without
    /// another pass over the output).
    pub fn matmul_t_bias_into(
        &self,
        x: &[f32],
        m: usize,
        bias: &[f32],
        act: Activation,
        out: &mut [f32],
    ) -> Result<()> {
        ensure!(
            bias.len() == self.n,
            "bias has {} values, expected {}",
            bias.len(),
            self.n
        );
        self.product(x, m, Some(bias), act == Activation::GeluErf, as_uninit(out))
    }

    /// The product behind [`PackedMatrix::matmul_t`] and the `_into` variants: on success
    /// every one of the `m × n` values of `out` has been stored (each tile stores its
    /// outputs before any later block of input features reads them back).
    fn product(
        &self,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        gelu: bool,
        out: &mut [MaybeUninit<f32>],
    ) -> Result<()> {
        ensure!(
            x.len() == m * self.k,
            "input has {} values, expected {m}×{}",
            x.len(),
            self.k
        );
        ensure!(
            out.len() == m * self.n,
            "output has {} values, expected {m}×{}",
            out.len(),
            self.n
        );
        if m == 0 {
            return Ok(());
        }
        let out = Dest {
            out: out.as_mut_ptr().cast::<f32>(),
            bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
            gelu,
        };
        let panels = self.n.div_ceil(self.layout.nr);
        // On candle's worker pool, like the element-wise ops between the matmuls: one warm
        // pool instead of two competing for the cores.
        let pool = candle_core::utils::barrier_pool();
        match &self.panels {
            Panels::F32(w) => pool.execute_chunked(panels, |range| {
                let task = PanelRange {
                    a: self,
                    w,
                    x,
                    m,
                    range,
                    out,
                };
                simd::run(self.isa, task)
            }),
            Panels::Int8 { values, scales } => pool.execute_chunked(panels, |range| {
                let task = Int8PanelRange {
                    a: self,
                    values,
                    scales,
                    x,
                    m,
                    range,
                    out,
                };
                simd::run(self.isa, task)
            }),
            // SAFETY: int8 panels are packed only where the CPU runs them
            // (`Isa::int8_products`); `out` holds `m × n` values, the bias `n`.
            Panels::Int8Products(p) => unsafe { p.product(x, m, out) },
            Panels::Bf16(w) if self.layout.order == Order::Tiles => {
                self.matmul_tiles(w, x, m, out);
                if gelu {
                    // A pass of its own: GELU on each block as it was stored, or on a
                    // worker's columns after its blocks, ran slower between AMX blocks.
                    // SAFETY: `matmul_tiles` stored all `m × n` outputs, which nothing
                    // else borrows.
                    let out = unsafe { std::slice::from_raw_parts_mut(out.out, m * self.n) };
                    crate::pool::par_chunks(out, self.n, |_, row| vmath::gelu_erf(row));
                }
            }
            Panels::Bf16(w) if self.layout.order == Order::Pairs => self.matmul_pairs(w, x, m, out),
            Panels::Bf16(w) => {
                let x: Vec<f32> = x
                    .iter()
                    .map(|&v| half::bf16::from_f32(v).to_f32())
                    .collect();
                let x = &x[..];
                pool.execute_chunked(panels, |range| {
                    let task = PanelRange {
                        a: self,
                        w,
                        x,
                        m,
                        range,
                        out,
                    };
                    simd::run(self.isa, task)
                })
            }
        }
        Ok(())
    }

    /// The `vdpbf16ps` path: inputs rounded to bf16 pairs.
    fn matmul_pairs(&self, w: &[u16], x: &[f32], m: usize, out: Dest) {
        #[cfg(target_arch = "x86_64")]
        {
            let xb = pairs_bf16(x);
            let panels = self.n.div_ceil(self.layout.nr);
            candle_core::utils::barrier_pool().execute_chunked(panels, |range| {
                // SAFETY: the layout has pairs only where the CPU has AVX512-BF16
                // (`Isa::bf16_dot`); the panels of `range` are handed to one call only and
                // write only their own output columns.
                unsafe { self.panel_range::<Dpbf16>(w, &xb, m, range, out) }
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (w, x, m, out);
            unreachable!("bf16 pairs are an AVX512-BF16 layout")
        }
    }

    /// The AMX path: inputs rounded to bf16 rows of whole tile steps, zero past the input
    /// features and the rows; each worker takes a range of panels, each panel every block
    /// of 32 rows while its weights are in cache.
    fn matmul_tiles(&self, w: &[u16], x: &[f32], m: usize, out: Dest) {
        #[cfg(target_arch = "x86_64")]
        {
            let (k, kp) = (self.k, self.kp);
            let mut xb = Aligned::<u32>::zeroed(m.next_multiple_of(amx::TILE_ROWS) * kp / 2);
            for (row, words) in x.chunks_exact(k).zip(xb.chunks_exact_mut(kp / 2)) {
                pairs_bf16_into(row, &mut words[..k / 2]);
            }
            let panels = self.n.div_ceil(amx::NR);
            candle_core::utils::barrier_pool().execute_chunked(panels, |range| {
                // SAFETY: the layout has tiles only on the AMX path, whose CPU check asked
                // for the tiles (`Isa::runs_here`); the panels of `range` are handed to one
                // call only and write only their own output columns.
                unsafe { self.tile_panels(w, &xb, m, range, out) }
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (w, x, m, out);
            unreachable!("AMX tiles are an x86-64 layout")
        }
    }

    /// Panels `range` times all `m` rows of `xb` (bf16 pairs, `kp / 2` words per row, rows
    /// padded to whole tiles), 32 rows at a time, the sums (plus the bias) stored into the
    /// output columns that exist (GELU, if asked, follows in `product`).
    ///
    /// # Safety
    /// AMX tiles are enabled ([`amx::tiles_enabled`]); `w` is this matrix's tile-ordered
    /// panels; no other call writes the output columns of `range` meanwhile.
    #[cfg(target_arch = "x86_64")]
    unsafe fn tile_panels(&self, w: &[u16], xb: &[u32], m: usize, range: Range<usize>, out: Dest) {
        let (n, kp) = (self.n, self.kp);
        let steps = kp / amx::STEP;
        let mut sums = amx::Sums::default();
        // SAFETY: the caller's contract; panel `p` holds `kp × NR` weights, `xb` 32-row
        // blocks from every `r0 < m` (padded), `out` `m × n` values and the bias `n`.
        unsafe {
            let tiles = amx::Tiles::configure();
            for p in range {
                let wp = w.as_ptr().add(p * amx::NR * kp) as *const u8;
                let (c0, cols) = (p * amx::NR, (n - p * amx::NR).min(amx::NR));
                for r0 in (0..m).step_by(2 * amx::TILE_ROWS) {
                    let rows = (m - r0).min(2 * amx::TILE_ROWS);
                    let o = out.out.add(r0 * n + c0);
                    let mut block = amx::Block {
                        x: xb.as_ptr().add(r0 * kp / 2) as *const u8,
                        x_stride: kp * 2,
                        two_row_tiles: rows > amx::TILE_ROWS,
                        w: wp,
                        steps,
                        out: o as *mut u8,
                        out_stride: n * 4,
                    };
                    // Whole tiles without a bias go straight to the output.
                    if cols == amx::NR && rows.is_multiple_of(amx::TILE_ROWS) && out.bias.is_null()
                    {
                        tiles.block(&block);
                        continue;
                    }
                    block.out = sums.0.as_mut_ptr() as *mut u8;
                    block.out_stride = amx::NR * 4;
                    tiles.block(&block);
                    for (i, row) in sums.0[..rows].iter().enumerate() {
                        // Stored before the slice exists: the output may be uninitialised.
                        std::ptr::copy_nonoverlapping(row.as_ptr(), o.add(i * n), cols);
                        let o = std::slice::from_raw_parts_mut(o.add(i * n), cols);
                        if !out.bias.is_null() {
                            let bias = std::slice::from_raw_parts(out.bias.add(c0), cols);
                            o.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                        }
                    }
                }
            }
        }
    }

    /// Output columns of panel `p` that exist in the weight.
    fn panel_cols(&self, p: usize) -> usize {
        (self.n - p * self.layout.nr).min(self.layout.nr)
    }

    /// Panels `group` (at most [`group_len`] of them) times all `m` rows, in the order
    /// that keeps every operand in cache: for each block of [`MC`] rows, for each block of
    /// [`KC`] steps along the input features, each panel's block of weights passes over the
    /// rows' tiles. A row block's partial sums (a few dozen KiB) stay in cache from one
    /// block of steps to the next, its inputs while the group's panels pass, and the group's
    /// blocks of weights (at most 256 KiB) while the row tiles pass. (Sweeping all rows per
    /// block of steps reloaded partial sums from memory on long batches: rows a power-of-two
    /// apart share a few cache sets.)
    ///
    /// # Safety
    /// The CPU runs `A`'s instructions, `A` matches the layout, and no other call writes
    /// the output columns of the group's panels meanwhile.
    #[inline(always)]
    unsafe fn panels<A: Arith>(
        &self,
        data: &[A::W],
        x: &[A::X],
        m: usize,
        group: Range<usize>,
        out: Dest,
    ) {
        let nr = self.layout.nr;
        let steps = self.k / A::FEATURES_PER_STEP;
        let per_step = nr * A::FEATURES_PER_STEP;
        let step_bytes = per_step * std::mem::size_of::<A::W>();
        let lines = step_bytes.div_ceil(64);
        let panel_at = |p: usize| p * steps * per_step;
        for mb in (0..m).step_by(MC) {
            let rows = MC.min(m - mb);
            for kb in (0..steps).step_by(KC) {
                for p in group.clone() {
                    // The block to fetch ahead: one panel at a time, the next panel's block
                    // of the same steps; in a group, the block read next: the next panel's,
                    // after the last panel the group's next block, after the last block the
                    // group's first (next row block) or the next group's first (none past
                    // the weight, nor a shorter last block, which the prefetches would
                    // overrun).
                    let next_block = if p + 1 < group.end || group.len() == 1 {
                        ((p + 1) * nr < self.n).then(|| panel_at(p + 1) + kb * per_step)
                    } else if kb + 2 * KC <= steps {
                        Some(panel_at(group.start) + (kb + KC) * per_step)
                    } else if kb + KC < steps {
                        None
                    } else if mb + MC < m {
                        Some(panel_at(group.start))
                    } else {
                        ((p + 1) * nr < self.n).then(|| panel_at(p + 1))
                    };
                    // SAFETY: every pointer stays inside its buffer: panel `p` holds
                    // `steps × per_step` weights, `x` `m × steps` inputs, `out` `m × n`
                    // outputs and the bias (if any) `n` values; the caller's contract
                    // covers the CPU and the columns.
                    unsafe {
                        let w = data.as_ptr().add(panel_at(p));
                        for (pass, (i0, tile)) in row_tiles(rows, MR).enumerate() {
                            let i0 = mb + i0;
                            // The first row tiles read this block from memory; each fetches
                            // one of the cache lines per step of the next block, spreading
                            // its DRAM traffic.
                            let next = match next_block {
                                Some(b) if (1..=lines).contains(&pass) => {
                                    (data.as_ptr().add(b) as *const i8).add(64 * (pass - 1))
                                }
                                _ => std::ptr::null(),
                            };
                            let t = Tile {
                                x: x.as_ptr().add(i0 * steps + kb),
                                ldx: steps,
                                steps: KC.min(steps - kb),
                                w: w.add(kb * per_step),
                                out: out.out.add(i0 * self.n + p * nr),
                                ldo: self.n,
                                cols: self.panel_cols(p),
                                accumulate: kb > 0,
                                bias: if out.bias.is_null() || kb + KC < steps {
                                    std::ptr::null()
                                } else {
                                    out.bias.add(p * nr)
                                },
                                next,
                                next_stride: step_bytes,
                            };
                            tile_rows::<A>(&t, tile);
                            if out.gelu && kb + KC >= steps {
                                gelu_stored(&t, tile);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Panels `range`, group after group ([`PackedMatrix::panels`]).
    ///
    /// # Safety
    /// As [`PackedMatrix::panels`], for the panels of `range`.
    #[inline(always)]
    unsafe fn panel_range<A: Arith>(
        &self,
        data: &[A::W],
        x: &[A::X],
        m: usize,
        range: Range<usize>,
        out: Dest,
    ) {
        let step_bytes = self.layout.nr * A::FEATURES_PER_STEP * std::mem::size_of::<A::W>();
        let len = group_len(step_bytes, m * self.k);
        for start in range.clone().step_by(len) {
            // SAFETY: the caller's contract, for a part of its range.
            unsafe { self.panels::<A>(data, x, m, start..range.end.min(start + len), out) }
        }
    }
}

/// The int8 values of `blocks` (`n × k`) decoded into panels of `nr` columns, each value `v`
/// stored as `value(v)`, `RUN` consecutive inputs of a column together (`[k / RUN][nr][RUN]`:
/// input `kk` of column `c` at `((kk / RUN) · nr + c) · RUN + kk % RUN`), and the group scales
/// and offsets `[panel][k / group][nr]` (columns past the weight: zero bytes, scale 0). Each
/// row is decoded and mapped in order, then its runs spread over the panel's steps.
fn decode_panels<T: bytemuck::Pod + Send, const RUN: usize>(
    blocks: &IntBlocks,
    nr: usize,
    value: impl Fn(i8) -> T + Sync,
) -> (Aligned<T>, Aligned<f32>, Aligned<f32>) {
    let (n, k) = (blocks.rows(), blocks.k());
    let groups = k / blocks.group();
    let panels = n.div_ceil(nr);
    let mut values = Aligned::<T>::zeroed(panels * nr * k);
    let mut scales = Aligned::<f32>::zeroed(panels * nr * groups);
    let mut offsets = Aligned::<f32>::zeroed(scales.len());
    let buffers = || {
        (
            vec![0i8; k],
            vec![T::zeroed(); k],
            vec![0f32; groups],
            vec![0f32; groups],
        )
    };
    values
        .par_chunks_mut(nr * k)
        .zip(scales.par_chunks_mut(nr * groups))
        .zip(offsets.par_chunks_mut(nr * groups))
        .enumerate()
        .for_each_init(
            buffers,
            |(row, mapped, sc, off), (p, ((panel, panel_scales), panel_offsets))| {
                for c in 0..nr.min(n - p * nr) {
                    blocks.decode_row(p * nr + c, row, sc, off);
                    for g in 0..groups {
                        panel_scales[g * nr + c] = sc[g];
                        panel_offsets[g * nr + c] = off[g];
                    }
                    for (m, &v) in mapped.iter_mut().zip(row.iter()) {
                        *m = value(v);
                    }
                    // The row's runs, one per step of `nr · RUN` values.
                    let steps = panel.chunks_exact_mut(nr * RUN);
                    for (step, run) in steps.zip(mapped.chunks_exact(RUN)) {
                        step[c * RUN..][..RUN].copy_from_slice(run);
                    }
                }
            },
        );
    (values, scales, offsets)
}

/// `out` as a slice of possibly uninitialised values, for [`PackedMatrix::product`], which
/// only stores initialised values into it.
fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; what is written through the result
    // is always an initialised `f32`, so `out` stays initialised.
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Panels per group in [`PackedMatrix::panels`] for `inputs` f32 inputs: one while they
/// fit in 512 KiB of cache anyway (decoding), else as many blocks of [`KC`] steps of
/// `step_bytes` as fit in 256 KiB (2 AVX-512 f32 panels, 8 AVX2 ones).
fn group_len(step_bytes: usize, inputs: usize) -> usize {
    if inputs * 4 <= 512 << 10 {
        return 1;
    }
    ((256 << 10) / (KC * step_bytes)).max(1)
}

/// Rows per row block in [`PackedMatrix::panels`] (eight tiles): the block's partial sums
/// of a group take 24 KiB, its inputs per block of [`KC`] steps 96 KiB.
const MC: usize = 8 * MR;

/// Runs the register tile of `A` over the first `rows` rows of `t` (at most [`MR`]).
///
/// # Safety
/// As [`Arith::tile`], for `rows.min(MR)` rows.
#[inline(always)]
unsafe fn tile_rows<A: Arith>(t: &Tile<A::X, A::W>, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match rows.min(MR) {
            6 => A::tile::<6>(t),
            5 => A::tile::<5>(t),
            4 => A::tile::<4>(t),
            3 => A::tile::<3>(t),
            2 => A::tile::<2>(t),
            _ => A::tile::<1>(t),
        }
    }
}

/// The register tiles over `rows` rows, at most `mr` each: as few as whole tiles take, their
/// rows as even as can be (the larger first), as `(first row, rows)`. 20 rows in tiles of 6
/// go as 5, 5, 5, 5, not 6, 6, 6, 2, whose last tile has too few independent sums to keep
/// the FMA pipes busy (the bits are the same: each output is its own chain).
pub(crate) fn row_tiles(rows: usize, mr: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = rows.div_ceil(mr);
    let (base, extra) = (rows / tiles.max(1), rows % tiles.max(1));
    (0..tiles).map(move |t| (t * base + t.min(extra), base + usize::from(t < extra)))
}

/// Packs an `[n, k]` operand whose column `c`, input feature `kk` is `at(c, kk)` into f32
/// panels of `nr` columns (a path's `V::NR`) for [`small_product`], on the calling thread;
/// `out` is overwritten.
pub(crate) fn pack_small(
    n: usize,
    k: usize,
    nr: usize,
    at: impl Fn(usize, usize) -> f32,
    out: &mut Vec<f32>,
) {
    let layout = Layout {
        nr,
        order: Order::Features,
    };
    out.clear();
    out.resize(n.div_ceil(nr) * nr * k, 0.0);
    for (p, panel) in out.chunks_mut(nr * k).enumerate() {
        fill_panel(panel, p, n, k, layout, &at);
    }
}

/// `x · wᵀ` on the calling thread with the f32 register tiles of path `V`, for an `[n, k]`
/// operand `w` packed by [`pack_small`] with `V::NR`: `x` holds `m` rows of `k` values, `ldx`
/// apart; `out` gets `m` rows of `n` values, `ldo` apart (each one FMA chain, as in
/// [`PackedMatrix::matmul_t`]).
///
/// # Safety
/// The CPU runs `V`.
#[inline(always)]
pub(crate) unsafe fn small_product<V: Vector>(
    panels: &[f32],
    (n, k): (usize, usize),
    x: &[f32],
    ldx: usize,
    m: usize,
    out: &mut [f32],
    ldo: usize,
) {
    if m == 0 {
        return;
    }
    assert!(panels.len() == n.div_ceil(V::NR) * V::NR * k);
    assert!(x.len() >= (m - 1) * ldx + k && out.len() >= (m - 1) * ldo + n);
    for p in 0..n.div_ceil(V::NR) {
        for (i0, rows) in row_tiles(m, MR) {
            // SAFETY: the asserts keep every row of the tile inside `x` and `out`, panel `p`
            // holds `k × V::NR` weights; the caller guarantees the CPU.
            unsafe {
                let t = Tile {
                    x: x.as_ptr().add(i0 * ldx),
                    ldx,
                    steps: k,
                    w: panels.as_ptr().add(p * k * V::NR),
                    out: out.as_mut_ptr().add(i0 * ldo + p * V::NR),
                    ldo,
                    cols: V::NR.min(n - p * V::NR),
                    accumulate: false,
                    bias: std::ptr::null(),
                    next: std::ptr::null(),
                    next_stride: 0,
                };
                tile_rows::<Widen<V, f32>>(&t, rows);
            }
        }
    }
}

/// The panels `range` of a product, as one task on the matrix's kernel path.
struct PanelRange<'a, W> {
    a: &'a PackedMatrix,
    w: &'a [W],
    x: &'a [f32],
    m: usize,
    range: Range<usize>,
    out: Dest,
}

impl<W: Weight> Task for PanelRange<'_, W> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        // SAFETY: the CPU runs `V` (caller); `V::NR` is the layout's width (both come from
        // the matrix's path); the panels of the range are handed to this call only.
        unsafe {
            self.a
                .panel_range::<Widen<V, W>>(self.w, self.x, self.m, self.range, self.out)
        }
    }
}

/// The panels `range` of a product by a [`Panels::Int8`] weight, as one task on the matrix's
/// kernel path: each block of [`WIDEN_KC`] steps of a panel widened to f32 (in cache), then
/// multiplied by every row as the f32 panels are, one FMA chain per output over the input
/// features in order.
struct Int8PanelRange<'a> {
    a: &'a PackedMatrix,
    values: &'a [i8],
    scales: &'a BlockScales,
    x: &'a [f32],
    m: usize,
    range: Range<usize>,
    out: Dest,
}

impl Task for Int8PanelRange<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let (n, k, nr) = (self.a.n, self.a.k, V::NR);
        let mut w = WIDENED_BLOCK.take();
        if w.len() < nr * WIDEN_KC {
            w = Aligned::zeroed(nr * WIDEN_KC);
        }
        for p in self.range {
            for kb in (0..k).step_by(WIDEN_KC) {
                let steps = WIDEN_KC.min(k - kb);
                let values = &self.values[(p * k + kb) * nr..][..steps * nr];
                // SAFETY: the CPU runs `V` (caller); both hold `steps × V::NR` values.
                unsafe {
                    self.scales
                        .widen::<V>(p, (n, k), kb, values, &mut w[..steps * nr])
                };
                // The values read next follow these (the next block, or the next panel's
                // first): the first row tile fetches a line of them per step, so that they
                // come from memory while this block's products run (none where the
                // prefetches would run past the values).
                let end = (p * k + kb + steps) * nr;
                let next =
                    (end + steps * nr <= self.values.len()).then(|| self.values[end..].as_ptr());
                for (i0, rows) in row_tiles(self.m, MR) {
                    // SAFETY: the CPU runs `V` (caller); `w` holds this block's `steps × V::NR`
                    // weights, `x` `m × k` inputs, `out` `m × n` outputs and the bias (if any)
                    // `n` values; the panels of the range are handed to this call only; `next`
                    // is valid for `steps × V::NR` values.
                    unsafe {
                        let t = Tile {
                            x: self.x.as_ptr().add(i0 * k + kb),
                            ldx: k,
                            steps,
                            w: w.as_ptr(),
                            out: self.out.out.add(i0 * n + p * nr),
                            ldo: n,
                            cols: self.a.panel_cols(p),
                            accumulate: kb > 0,
                            bias: if self.out.bias.is_null() || kb + WIDEN_KC < k {
                                std::ptr::null()
                            } else {
                                self.out.bias.add(p * nr)
                            },
                            next: next.filter(|_| i0 == 0).unwrap_or(std::ptr::null()),
                            next_stride: nr,
                        };
                        tile_rows::<Widen<V, f32>>(&t, rows);
                        if self.out.gelu && kb + WIDEN_KC >= k {
                            gelu_stored(&t, rows);
                        }
                    }
                }
            }
        }
        WIDENED_BLOCK.set(w);
    }
}

thread_local! {
    /// Each thread's block of widened weights for [`Int8PanelRange`], kept between products:
    /// allocated zeroed at every product, its 40 KiB took 2–4% of `--dtype f32` decoding.
    static WIDENED_BLOCK: std::cell::Cell<Aligned<f32>> = std::cell::Cell::default();
}

/// Steps along the input features per cache block (128 KiB of weights per AVX-512 panel,
/// 32 KiB per 16-column panel), which stay in cache while the row tiles pass (large
/// models have panels of megabytes). Against 256 steps, half the tiles' loads and stores
/// of partial sums: COMET's f32 scoring ran 5% faster.
const KC: usize = 512;

/// Steps per block of a [`Panels::Int8`] panel widened to f32: 20 KiB of f32 weights per
/// 16-column panel, 40 KiB per AVX-512 panel, in cache while the row tiles pass. Against 128
/// steps, fewer loads and stores of partial sums: Gemma-3-270M's Q8_0 LM head in f32 ran at
/// 187–195 against 165–171 GFLOP/s on a Zen 4's AVX2 path (40 rows), the beam benchmark's
/// `--dtype f32` decoding 2–5% faster on the AVX2 and AVX-512 paths (640 steps: the same).
const WIDEN_KC: usize = 320;

/// One register tile's work: `R` rows of `x` times a block of one panel.
struct Tile<X, W> {
    /// First input value of the block, row 0.
    x: *const X,
    /// Input values per row.
    ldx: usize,
    /// Steps in this block.
    steps: usize,
    /// First weight value of the block.
    w: *const W,
    /// First output value (row 0, panel column 0).
    out: *mut f32,
    /// Output values per row.
    ldo: usize,
    /// Panel columns that exist in the output.
    cols: usize,
    /// Add to the partial sums already in `out` (later blocks) instead of starting at 0.
    accumulate: bool,
    /// The bias of the tile's first column, added as the last block is stored (null: none).
    bias: *const f32,
    /// A cache line of the next block of weights to prefetch at each step (null: none).
    next: *const i8,
    /// Bytes of weights per step.
    next_stride: usize,
}

/// The arithmetic of a packed layout: input and weight element types and the tile kernel.
trait Arith {
    /// One input step as the kernel broadcasts it.
    type X;
    /// A packed weight element.
    type W;
    /// The registers of the tile.
    type V: Vector;
    /// Input features per step.
    const FEATURES_PER_STEP: usize;
    /// Runs one tile of `R` rows ([`run_tile`] on the CPU features the step needs).
    ///
    /// # Safety
    /// The CPU runs the instructions; the tile's pointers are valid for its shape.
    unsafe fn tile<const R: usize>(t: &Tile<Self::X, Self::W>);
    /// Step `kk` of a tile: `acc[i]` gains the products of row `i`'s inputs at
    /// `rows[i] + kk` and the step's weights.
    ///
    /// # Safety
    /// As [`Arith::tile`]; inlined only into code that enables the step's CPU features.
    unsafe fn step<const R: usize>(
        t: &Tile<Self::X, Self::W>,
        acc: &mut [<Self::V as Vector>::Row; R],
        rows: &[*const Self::X; R],
        kk: usize,
    );
}

/// One tile of `A` with `R` rows: the partial sums (if any) loaded, every step, the sums
/// stored.
///
/// # Safety
/// As [`Arith::tile`].
#[inline(always)]
unsafe fn run_tile<A: Arith, const R: usize>(t: &Tile<A::X, A::W>) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut acc = start_tile::<A::V, R, _, _>(t);
        if t.next.is_null() {
            run_steps::<A, R, false>(t, &mut acc);
        } else {
            run_steps::<A, R, true>(t, &mut acc);
        }
        finish_tile::<A::V, R, _, _>(t, &acc);
    }
}

/// The steps of a tile, four at a time, each input row read through its own pointer (a
/// broadcast at a fixed offset, not an address computed per row): fewer scalar
/// instructions beside the FMAs, which share their ports. Fetches a line of the next block
/// per step if `PREFETCH`.
///
/// # Safety
/// As [`Arith::tile`]; with `PREFETCH`, `t.next` is valid for `t.steps` strides.
#[inline(always)]
unsafe fn run_steps<A: Arith, const R: usize, const PREFETCH: bool>(
    t: &Tile<A::X, A::W>,
    acc: &mut [<A::V as Vector>::Row; R],
) {
    const UNROLL: usize = 4;
    let whole = t.steps / UNROLL * UNROLL;
    // SAFETY: the caller's contract.
    unsafe {
        let rows: [*const A::X; R] = std::array::from_fn(|i| t.x.add(i * t.ldx));
        for kk in (0..whole).step_by(UNROLL) {
            for u in 0..UNROLL {
                if PREFETCH {
                    A::V::prefetch(t.next.add((kk + u) * t.next_stride));
                }
                A::step::<R>(t, acc, &rows, kk + u);
            }
        }
        for kk in whole..t.steps {
            if PREFETCH {
                A::V::prefetch(t.next.add(kk * t.next_stride));
            }
            A::step::<R>(t, acc, &rows, kk);
        }
    }
}

/// A packed weight element: f32, or bf16 widened to f32 on load.
trait Weight: Copy + Send + Sync {
    /// `V::LANES` weights from `p` as f32.
    ///
    /// # Safety
    /// The CPU runs `V`; `p` is valid for `V::LANES` values.
    unsafe fn load<V: Vector>(p: *const Self) -> V;
}

impl Weight for f32 {
    #[inline(always)]
    unsafe fn load<V: Vector>(p: *const f32) -> V {
        // SAFETY: the caller's contract.
        unsafe { V::load(p) }
    }
}

impl Weight for u16 {
    #[inline(always)]
    unsafe fn load<V: Vector>(p: *const u16) -> V {
        // SAFETY: the caller's contract.
        unsafe { V::load_bf16(p) }
    }
}

/// f32 inputs times weights `W` in one FMA chain per output, with registers `V`.
struct Widen<V, W>(PhantomData<(V, W)>);

impl<V: Vector, W: Weight> Arith for Widen<V, W> {
    type X = f32;
    type W = W;
    type V = V;
    const FEATURES_PER_STEP: usize = 1;

    #[inline(always)]
    unsafe fn tile<const R: usize>(t: &Tile<f32, W>) {
        // SAFETY: the caller's contract: the CPU runs `V`, the pointers cover the tile.
        unsafe { run_tile::<Self, R>(t) }
    }

    /// `acc[i] += x[i][kk] · w[kk][col]`.
    #[inline(always)]
    unsafe fn step<const R: usize>(
        t: &Tile<f32, W>,
        acc: &mut [V::Row; R],
        rows: &[*const f32; R],
        kk: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let wk = t.w.add(kk * V::NR);
            let mut wv = V::row(0.0);
            for (j, v) in wv.as_mut().iter_mut().enumerate() {
                *v = W::load::<V>(wk.add(j * V::LANES));
            }
            for (row, x) in acc.iter_mut().zip(rows) {
                let xb = V::splat(*x.add(kk));
                for (a, w) in row.as_mut().iter_mut().zip(wv.as_ref()) {
                    *a = xb.mul_add(*w, *a);
                }
            }
        }
    }
}

/// The panels of an `[n, k]` operand whose column `c`, feature `kk` is `at(c, kk)`, missing
/// columns of the last panel zero.
fn pack_panels<T: bytemuck::Pod + Send>(
    n: usize,
    k: usize,
    layout: Layout,
    at: impl Fn(usize, usize) -> T + Sync,
) -> Aligned<T> {
    let nr = layout.nr;
    let mut out = Aligned::<T>::zeroed(n.div_ceil(nr) * nr * k);
    out.par_chunks_mut(nr * k)
        .enumerate()
        .for_each(|(p, panel)| fill_panel(panel, p, n, k, layout, &at));
    out
}

/// The bf16 panels of an `[n, k]` weight (`k` even) in `layout`, `kp` input features per
/// column (zero past `k`); `row(c, buf)` writes weight row `c` into `buf` (`k` values). Each
/// row is rounded as a vector of pairs, whose halves go to their places in the panel.
fn pack_bf16_rows(
    n: usize,
    k: usize,
    kp: usize,
    layout: Layout,
    row: impl Fn(usize, &mut [f32]) + Sync,
) -> Aligned<u16> {
    let nr = layout.nr;
    let mut out = Aligned::<u16>::zeroed(n.div_ceil(nr) * nr * kp);
    out.par_chunks_mut(nr * kp)
        .enumerate()
        .for_each(|(p, panel)| {
            let (mut values, mut pairs) = (vec![0f32; k], vec![0u32; k / 2]);
            for c in 0..nr.min(n - p * nr) {
                row(p * nr + c, &mut values);
                round_pairs(&values, &mut pairs);
                if layout.order == Order::Pairs {
                    // Each pair is one 32-bit word of the panel, `nr` words apart.
                    let words: &mut [u32] = bytemuck::cast_slice_mut(panel);
                    for (i, word) in pairs.iter().enumerate() {
                        words[i * nr + c] = *word;
                    }
                    continue;
                }
                for (i, word) in pairs.iter().enumerate() {
                    panel[layout.index(c, 2 * i)] = *word as u16;
                    panel[layout.index(c, 2 * i + 1)] = (*word >> 16) as u16;
                }
            }
        });
    out
}

/// The AMX panels of an `[n, k]` matrix (`k` even) rounded to bf16, `kp` input features per
/// column (zero past `k`), read feature by feature: `feature(j, c0, buf)` writes the values of
/// input feature `j` for columns `c0 ..` into `buf` (for a transposed weight, part of one of
/// its rows).
fn pack_tiles_by_feature(
    n: usize,
    k: usize,
    kp: usize,
    feature: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Aligned<u16> {
    let mut out = Aligned::<u16>::zeroed(n.div_ceil(amx::NR) * amx::NR * kp);
    out.par_chunks_mut(amx::NR * kp)
        .enumerate()
        .for_each(|(p, panel)| {
            let cols = amx::NR.min(n - p * amx::NR);
            let mut values = [0f32; amx::NR];
            for j in 0..k {
                feature(j, p * amx::NR, &mut values[..cols]);
                for (c, v) in values[..cols].iter().enumerate() {
                    panel[amx::index(c, j)] = to_bf16(*v);
                }
            }
        });
    out
}

/// `x` rounded to bf16 pairs in 32-bit words, as [`pairs_bf16`] (vectorised where the CPU
/// has AVX512-BF16).
fn round_pairs(x: &[f32], out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512bf16") {
        return pairs_bf16_into(x, out);
    }
    for (o, p) in out.iter_mut().zip(x.chunks_exact(2)) {
        *o = u32::from(to_bf16(p[0])) | (u32::from(to_bf16(p[1])) << 16);
    }
}

/// Fills panel `p` of an `[n, k]` operand whose column `c`, feature `kk` is `at(c, kk)`
/// (columns past `n` are left as they are), feature after feature: the panel is written in
/// order while the reads of a row-major weight stay within `nr` rows' cache lines.
fn fill_panel<T>(
    panel: &mut [T],
    p: usize,
    n: usize,
    k: usize,
    layout: Layout,
    at: impl Fn(usize, usize) -> T,
) {
    let cols = layout.nr.min(n - p * layout.nr);
    for kk in 0..k {
        for c in 0..cols {
            panel[layout.index(c, kk)] = at(p * layout.nr + c, kk);
        }
    }
}

/// Where a product goes: its `[m, n]` output, the bias of its columns (null: none) and
/// whether GELU follows.
#[derive(Debug, Clone, Copy)]
struct Dest {
    out: *mut f32,
    bias: *const f32,
    gelu: bool,
}

/// GELU ([`vmath::gelu_erf`]) on the outputs of tile `t`'s first `rows` rows (at most
/// [`MR`]), just stored. A call out of the tile's code: GELU's vector code inlined beside
/// the tile's loop made the compiler spill its accumulators (half the speed).
///
/// # Safety
/// `t.out` is valid for the rows' `t.cols` values, which no other thread accesses.
#[inline(always)]
unsafe fn gelu_stored(t: &Tile<impl Sized, impl Sized>, rows: usize) {
    for i in 0..rows.min(MR) {
        // SAFETY: the caller's contract.
        let row = unsafe { std::slice::from_raw_parts_mut(t.out.add(i * t.ldo), t.cols) };
        vmath::gelu_erf(row);
    }
}

// SAFETY: used only for disjoint writes from the pool's workers and reads of the bias
// (see `product`).
unsafe impl Send for Dest {}
// SAFETY: as above.
unsafe impl Sync for Dest {}

/// The tile's accumulators: zero, or the partial sums already in the output.
///
/// # Safety
/// The CPU runs `V`; `t.out` is valid for `R` rows of `t.cols` values.
#[inline(always)]
unsafe fn start_tile<V: Vector, const R: usize, X, W>(t: &Tile<X, W>) -> [V::Row; R] {
    // SAFETY: the caller's contract.
    unsafe {
        let mut acc = [V::row(0.0); R];
        if t.accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                *row = load_row::<V>(t.out.add(i * t.ldo), t.cols);
            }
        }
        acc
    }
}

/// Stores the tile's accumulators (plus the bias, if any) into the first `cols` columns of
/// its output rows.
///
/// # Safety
/// As [`start_tile`]; `t.bias`, unless null, is valid for `t.cols` values.
#[inline(always)]
unsafe fn finish_tile<V: Vector, const R: usize, X, W>(t: &Tile<X, W>, acc: &[V::Row; R]) {
    // SAFETY: the caller's contract.
    unsafe {
        let has_bias = !t.bias.is_null();
        let bias = if has_bias {
            load_row::<V>(t.bias, t.cols)
        } else {
            V::row(0.0)
        };
        for (i, row) in acc.iter().enumerate() {
            let mut row = *row;
            if has_bias {
                for (a, b) in row.as_mut().iter_mut().zip(bias.as_ref()) {
                    *a = a.add(*b);
                }
            }
            store_row::<V>(&row, t.out.add(i * t.ldo), t.cols)
        }
    }
}

/// Widest tile row, in columns.
const MAX_NR: usize = 64;

/// A tile row from the first `cols` (≤ `V::NR`) values at `p`, the rest zero.
///
/// # Safety
/// The CPU runs `V`; `p` is valid for `cols` values.
#[inline(always)]
unsafe fn load_row<V: Vector>(p: *const f32, cols: usize) -> V::Row {
    // SAFETY: the caller's contract; `buf` holds `V::NR ≤ MAX_NR` values.
    unsafe {
        if cols == V::NR {
            return load_full_row::<V>(p);
        }
        // A partial row goes through a zeroed buffer, made only here: zeroing one for
        // every row cost as much as the loads.
        let mut buf = [0f32; MAX_NR];
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), cols);
        load_full_row::<V>(buf.as_ptr())
    }
}

/// A tile row from the `V::NR` values at `p`.
///
/// # Safety
/// The CPU runs `V`; `p` is valid for `V::NR` values.
#[inline(always)]
unsafe fn load_full_row<V: Vector>(p: *const f32) -> V::Row {
    // SAFETY: the caller's contract.
    unsafe {
        let mut row = V::row(0.0);
        for (j, v) in row.as_mut().iter_mut().enumerate() {
            *v = V::load(p.add(j * V::LANES));
        }
        row
    }
}

/// Stores the first `cols` (≤ `V::NR`) columns of a tile row at `p`.
///
/// # Safety
/// The CPU runs `V`; `p` is valid for `cols` values.
#[inline(always)]
unsafe fn store_row<V: Vector>(row: &V::Row, p: *mut f32, cols: usize) {
    // SAFETY: the caller's contract; `buf` holds `V::NR ≤ MAX_NR` values.
    unsafe {
        if cols == V::NR {
            return store_full_row::<V>(row, p);
        }
        let mut buf = [0f32; MAX_NR];
        store_full_row::<V>(row, buf.as_mut_ptr());
        std::ptr::copy_nonoverlapping(buf.as_ptr(), p, cols);
    }
}

/// Stores a tile row's `V::NR` values at `p`.
///
/// # Safety
/// The CPU runs `V`; `p` is valid for `V::NR` values.
#[inline(always)]
unsafe fn store_full_row<V: Vector>(row: &V::Row, p: *mut f32) {
    for (j, v) in row.as_ref().iter().enumerate() {
        // SAFETY: the caller's contract.
        unsafe { v.store(p.add(j * V::LANES)) };
    }
}

#[cfg(target_arch = "x86_64")]
use x86_bf16::{pairs_bf16, pairs_bf16_into, Dpbf16};

#[cfg(target_arch = "x86_64")]
mod x86_bf16 {
    //! The AVX512-BF16 layout: pairs of bf16 features, summed by `vdpbf16ps`.
    use super::{run_tile, to_bf16, Arith, Tile};
    use crate::simd::x86::Zmm;
    use crate::simd::Vector;
    use std::arch::x86_64::*;

    /// `vdpbf16ps` on pairs of bf16 inputs and weights, 64-column panels.
    pub(super) struct Dpbf16;

    impl Arith for Dpbf16 {
        type X = u32;
        type W = u16;
        type V = Zmm;
        const FEATURES_PER_STEP: usize = 2;

        #[target_feature(enable = "avx512f,avx512bf16")]
        unsafe fn tile<const R: usize>(t: &Tile<u32, u16>) {
            const { assert!(Zmm::NR == 64) };
            // SAFETY: the caller's contract: the CPU has AVX512-BF16, the pointers cover
            // the tile (64 columns × 2 features per step).
            unsafe { run_tile::<Self, R>(t) }
        }

        /// `acc[i] += x[i][2p]·w[2p][col] + x[i][2p+1]·w[2p+1][col]` for step `p`.
        #[inline(always)]
        unsafe fn step<const R: usize>(
            t: &Tile<u32, u16>,
            acc: &mut [[Zmm; 4]; R],
            rows: &[*const u32; R],
            p: usize,
        ) {
            // SAFETY: the caller's contract (inlined into `tile`, which enables the
            // features).
            unsafe {
                let wk = t.w.add(p * 128) as *const __m512i;
                let wv: [__m512bh; 4] = std::mem::transmute([
                    _mm512_loadu_si512(wk),
                    _mm512_loadu_si512(wk.add(1)),
                    _mm512_loadu_si512(wk.add(2)),
                    _mm512_loadu_si512(wk.add(3)),
                ]);
                for (row, x) in acc.iter_mut().zip(rows) {
                    let xb: __m512bh = std::mem::transmute(_mm512_set1_epi32(*x.add(p) as i32));
                    for (a, w) in row.iter_mut().zip(&wv) {
                        a.0 = _mm512_dpbf16_ps(a.0, xb, *w);
                    }
                }
            }
        }
    }

    /// Rounds `x` (even length) to bf16, nearest-even, and packs consecutive pairs into
    /// 32-bit words (first of the pair in the low half). Only called once the CPU is known
    /// to have AVX512-BF16.
    pub(super) fn pairs_bf16(x: &[f32]) -> Vec<u32> {
        let mut out = vec![0u32; x.len() / 2];
        pairs_bf16_into(x, &mut out);
        out
    }

    /// [`pairs_bf16`] into `out` (half as many words as `x` has values).
    pub(super) fn pairs_bf16_into(x: &[f32], out: &mut [u32]) {
        assert_eq!(out.len() * 2, x.len());
        // SAFETY: callers checked the CPU features; `out` holds half as many words as `x`
        // floats.
        let done = unsafe { pairs_bf16_avx512(x, out) };
        for (o, p) in out[done / 2..].iter_mut().zip(x[done..].chunks_exact(2)) {
            *o = u32::from(to_bf16(p[0])) | (u32::from(to_bf16(p[1])) << 16);
        }
    }

    /// The vectorised part of [`pairs_bf16`]; returns how many input values it converted.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn pairs_bf16_avx512(x: &[f32], out: &mut [u32]) -> usize {
        let n = x.len() / 32 * 32;
        for i in (0..n).step_by(32) {
            // SAFETY: `i + 32 <= n <= x.len()` and `out` holds `x.len() / 2` words.
            unsafe {
                let lo = _mm512_loadu_ps(x.as_ptr().add(i));
                let hi = _mm512_loadu_ps(x.as_ptr().add(i + 16));
                // `b` (second operand) fills the low half of the result.
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(out.as_mut_ptr().add(i / 2) as *mut _, v);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` test values in a small range: `(i·mul mod modulo − modulo/2) / div`.
    pub(super) fn data(len: usize, mul: usize, modulo: usize, div: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * mul % modulo) as f32 - (modulo / 2) as f32) / div)
            .collect()
    }

    /// Every tile height, a ragged last panel and odd sizes, against a plain f64 product of
    /// the values the kernel sees.
    #[test]
    fn matches_reference_on_ragged_shapes() {
        for (isa, precision) in paths() {
            let round = |v: f32| match precision {
                Precision::Bf16 => half::bf16::from_f32(v).to_f32(),
                _ => v,
            };
            for (m, n, k) in [
                (13, 131, 96),
                (1, 64, 2),
                (6, 70, 34),
                (40, 200, 640),
                (101, 300, 1400),
            ] {
                let w = data(n * k, 37, 101, 64.0);
                let x = data(m * k, 53, 89, 32.0);
                let packed = PackedMatrix::pack_for(isa, &w, n, k, precision).unwrap();
                let y = packed.matmul_t(&x, m).unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|t| round(x[i * k + t]) as f64 * round(w[j * k + t]) as f64)
                            .sum();
                        let got = y[i * n + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{isa} {precision:?} {m}×{n}×{k} ({i},{j}): {got} vs {want}"
                        );
                    }
                }
                let back = packed.to_tensor().unwrap().flatten_all().unwrap();
                let back = back.to_vec1::<f32>().unwrap();
                assert!(back.iter().zip(&w).all(|(b, &v)| *b == round(v)));
            }
        }
    }

    /// Every kernel path of this CPU with both precisions.
    fn paths() -> Vec<(Isa, Precision)> {
        let isas = crate::cpu::available();
        assert!(isas.contains(&Isa::Scalar));
        isas.into_iter()
            .flat_map(|i| [(i, Precision::F32), (i, Precision::Bf16)])
            .collect()
    }

    /// The f32 path gives the same bits on every kernel path: one FMA chain per output,
    /// also for a batch long enough for groups of panels and blocks of rows.
    #[test]
    fn f32_tiles_equal_a_sequential_fma_chain() {
        for (m, n, k) in [(7, 65, 300), (5, 64, 263), (101, 300, 1400)] {
            assert_eq!(group_len(4, m * k) > 1, m > MC);
            let w = data(n * k, 29, 97, 7.0);
            let x = data(m * k, 31, 83, 3.0);
            for isa in crate::cpu::available() {
                let y = PackedMatrix::pack_for(isa, &w, n, k, Precision::F32)
                    .unwrap()
                    .matmul_t(&x, m)
                    .unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let want = (0..k).fold(0f32, |a, t| x[i * k + t].mul_add(w[j * k + t], a));
                        assert_eq!(y[i * n + j], want, "{isa} {m}×{n}×{k} ({i},{j})");
                    }
                }
            }
        }
    }

    /// A transposed pack multiplies by the weight itself (`x · w`, training's backward
    /// pass), one FMA chain per output, on the active path.
    #[test]
    fn transposed_pack_multiplies_by_the_weight() {
        for (m, n, k) in [(7, 65, 30), (50, 33, 300)] {
            let w = data(n * k, 29, 97, 7.0);
            let x = data(m * n, 31, 83, 3.0);
            let packed = PackedMatrix::pack_transposed(&w, n, k, Precision::F32).unwrap();
            assert_eq!(packed.n(), k);
            let y = packed.matmul_t(&x, m).unwrap();
            for i in 0..m {
                for j in 0..k {
                    let want = (0..n).fold(0f32, |a, c| x[i * n + c].mul_add(w[c * k + j], a));
                    assert_eq!(y[i * k + j], want, "{m}×{n}×{k} ({i},{j})");
                }
            }
        }
    }

    /// Row tiles cover the rows once, in order, as few as `mr` allows, within one row of each
    /// other.
    #[test]
    fn row_tiles_split_rows_evenly() {
        assert_eq!(
            row_tiles(20, 6).collect::<Vec<_>>(),
            [(0, 5), (5, 5), (10, 5), (15, 5)]
        );
        assert_eq!(row_tiles(0, 6).count(), 0);
        for mr in 1..9 {
            for rows in 0..100 {
                let tiles: Vec<_> = row_tiles(rows, mr).collect();
                assert_eq!(tiles.len(), rows.div_ceil(mr));
                let mut next = 0;
                for &(i0, r) in &tiles {
                    assert!(
                        i0 == next && (1..=mr).contains(&r),
                        "{rows} in {mr}: {tiles:?}"
                    );
                    assert!(r + 1 >= tiles[0].1, "{rows} in {mr}: {tiles:?}");
                    next += r;
                }
                assert_eq!(next, rows);
            }
        }
    }

    /// Where bf16 widens on load (every path but AVX512-BF16's), it is one FMA chain too.
    #[test]
    fn widened_bf16_tiles_equal_a_sequential_fma_chain() {
        let (m, n, k) = (5, 40, 66);
        let w = data(n * k, 29, 97, 7.0);
        let x = data(m * k, 31, 83, 3.0);
        let r = |v: f32| half::bf16::from_f32(v).to_f32();
        for isa in crate::cpu::available()
            .into_iter()
            .filter(|i| !i.bf16_dot())
        {
            let y = PackedMatrix::pack_for(isa, &w, n, k, Precision::Bf16)
                .unwrap()
                .matmul_t(&x, m)
                .unwrap();
            for i in 0..m {
                for j in 0..n {
                    let want =
                        (0..k).fold(0f32, |a, t| r(x[i * k + t]).mul_add(r(w[j * k + t]), a));
                    assert_eq!(y[i * n + j], want, "{isa} ({i},{j})");
                }
            }
        }
    }

    /// The bias is added once, to the finished sums, on every path and precision (also
    /// where the input features span several cache blocks).
    #[test]
    fn bias_is_added_to_the_finished_products() {
        let (m, n, k) = (7, 70, 2 * KC + 6);
        let w = data(n * k, 29, 97, 7.0);
        let x = data(m * k, 31, 83, 3.0);
        let bias = data(n, 7, 13, 5.0);
        for (isa, precision) in paths() {
            let packed = PackedMatrix::pack_for(isa, &w, n, k, precision).unwrap();
            let plain = packed.matmul_t(&x, m).unwrap();
            let mut got = vec![f32::NAN; m * n];
            packed
                .matmul_t_bias_into(&x, m, &bias, Activation::Identity, &mut got)
                .unwrap();
            for (i, (g, p)) in got.iter().zip(&plain).enumerate() {
                assert_eq!(*g, p + bias[i % n], "{isa} {precision:?} {i}");
            }
            assert!(packed
                .matmul_t_bias_into(&x, m, &bias[1..], Activation::Identity, &mut got)
                .is_err());
        }
    }

    /// GELU applied as the tiles are stored gives the bits of `gelu_erf` on the finished
    /// sums, on every path and precision, with whole and partial tiles and blocks.
    #[test]
    fn gelu_on_stored_tiles_equals_gelu_afterwards() {
        for (m, n, k) in [(7, 70, 2 * KC + 6), (101, 300, 64), (33, 64, 40)] {
            let w = data(n * k, 29, 97, 7.0);
            let x = data(m * k, 31, 83, 30.0);
            let bias = data(n, 7, 13, 5.0);
            for (isa, precision) in paths() {
                let packed = PackedMatrix::pack_for(isa, &w, n, k, precision).unwrap();
                let mut want = vec![f32::NAN; m * n];
                packed
                    .matmul_t_bias_into(&x, m, &bias, Activation::Identity, &mut want)
                    .unwrap();
                crate::vmath::gelu_erf(&mut want);
                let mut got = vec![f32::NAN; m * n];
                packed
                    .matmul_t_bias_into(&x, m, &bias, Activation::GeluErf, &mut got)
                    .unwrap();
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{isa} {precision:?} {m}×{n}×{k} {i}"
                    );
                }
            }
        }
    }

    /// A Q8_0 weight packed from its blocks is the matrix of its dequantized weight, and
    /// multiplies to the same bits, on every path and precision, transposed too.
    #[test]
    fn q8_0_packs_equal_packs_of_the_dequantized_weight() {
        use candle_core::quantized::{GgmlDType::Q8_0, QTensor};
        // Several blocks of widened steps both ways, and a partial last panel.
        let (n, k) = (2 * WIDEN_KC + 6, 2 * WIDEN_KC + 32);
        let w = data(n * k, 37, 101, 64.0);
        let t = candle_core::Tensor::from_vec(w, (n, k), &candle_core::Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, Q8_0).unwrap();
        let blocks = q.data().unwrap();
        let dense = q.dequantize(&candle_core::Device::Cpu).unwrap();
        let dense = dense.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bias = data(n, 7, 13, 5.0);
        for (isa, precision) in paths() {
            let packed =
                PackedMatrix::pack_int_blocks_for(isa, Q8_0, &blocks, n, k, precision).unwrap();
            let plain = PackedMatrix::pack_for(isa, &dense, n, k, precision).unwrap();
            let label = format!("{isa} {precision:?}");
            assert_same_products(&packed, &plain, k, Some(&bias), &label);
            assert!(
                PackedMatrix::pack_int_blocks_for(isa, Q8_0, &blocks[1..], n, k, precision)
                    .is_err()
            );
            assert!(
                PackedMatrix::pack_int_blocks_for(isa, Q8_0, &blocks, n, k + 1, precision).is_err()
            );
        }
        // Transposed (the backward pass), on every path and precision.
        for (isa, precision) in paths() {
            let packed =
                PackedMatrix::pack_q8_0_transposed_for(isa, &blocks, n, k, precision).unwrap();
            let plain = PackedMatrix::pack_transposed_for(isa, &dense, n, k, precision).unwrap();
            let label = format!("{isa} {precision:?} transposed");
            assert_same_products(&packed, &plain, n, None, &label);
            let short = &blocks[1..];
            assert!(PackedMatrix::pack_q8_0_transposed_for(isa, short, n, k, precision).is_err());
        }
    }

    /// A weight of GGUF int8 blocks of every type read (offsets, groups of 16 and 32) packed
    /// from its blocks is the matrix candle dequantizes it to, and multiplies to the same
    /// bits, on every path and precision; sizes that do not fit are refused.
    #[test]
    fn int_block_packs_equal_packs_of_the_dequantized_weight() {
        use candle_core::quantized::QTensor;
        use GgmlDType::*;
        // Several blocks of widened steps, and a partial last panel.
        let (n, k) = (70, 512);
        let w = data(n * k, 37, 101, 64.0);
        let t = candle_core::Tensor::from_vec(w, (n, k), &candle_core::Device::Cpu).unwrap();
        let bias = data(n, 7, 13, 5.0);
        for dtype in [Q4_0, Q4_1, Q5_0, Q8_0, Q4K, Q6K] {
            let q = QTensor::quantize(&t, dtype).unwrap();
            let blocks = q.data().unwrap();
            let dense = q.dequantize(&candle_core::Device::Cpu).unwrap();
            let dense = dense.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (isa, precision) in paths() {
                let pack =
                    |b: &[u8]| PackedMatrix::pack_int_blocks_for(isa, dtype, b, n, k, precision);
                let plain = PackedMatrix::pack_for(isa, &dense, n, k, precision).unwrap();
                let label = format!("{isa} {precision:?} {dtype:?}");
                assert_same_products(&pack(&blocks).unwrap(), &plain, k, Some(&bias), &label);
                assert!(pack(&blocks[1..]).is_err());
            }
        }
        let f16 = vec![0u8; 2 * n * k];
        let f32 = Precision::F32;
        assert!(PackedMatrix::pack_int_blocks_for(Isa::Scalar, F16, &f16, n, k, f32).is_err());
    }

    /// A transposed pack is the matrix of the transposed weight packed as it is, and
    /// multiplies to the same bits, on every path and precision (in bf16, AMX tiles
    /// included, rounded alike).
    #[test]
    fn transposed_packs_equal_packs_of_the_transpose() {
        let (n, k) = (70, 96);
        let w = data(n * k, 37, 101, 64.0);
        let wt: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
        for (isa, precision) in paths() {
            let packed = PackedMatrix::pack_transposed_for(isa, &w, n, k, precision).unwrap();
            let plain = PackedMatrix::pack_for(isa, &wt, k, n, precision).unwrap();
            assert_same_products(&packed, &plain, n, None, &format!("{isa} {precision:?}"));
        }
        let odd =
            PackedMatrix::pack_transposed_for(Isa::Scalar, &w[..69 * k], 69, k, Precision::Bf16);
        assert!(odd.is_err());
    }

    /// `a` and `b` hold the same matrix (`k` input features) and multiply 1, 7 and 40 rows to
    /// the same bits, also with `bias`.
    fn assert_same_products(
        a: &PackedMatrix,
        b: &PackedMatrix,
        k: usize,
        bias: Option<&[f32]>,
        label: &str,
    ) {
        let values = |m: &PackedMatrix| {
            m.to_tensor()
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(values(a), values(b), "{label}");
        let n = a.n();
        for m in [1, 7, 40] {
            let x = data(m * k, 53, 89, 32.0);
            assert_eq!(
                a.matmul_t(&x, m).unwrap(),
                b.matmul_t(&x, m).unwrap(),
                "{label}, {m} rows"
            );
            if let Some(bias) = bias {
                let (mut ya, mut yb) = (vec![0f32; m * n], vec![0f32; m * n]);
                let id = Activation::Identity;
                a.matmul_t_bias_into(&x, m, bias, id, &mut ya).unwrap();
                b.matmul_t_bias_into(&x, m, bias, id, &mut yb).unwrap();
                assert_eq!(ya, yb, "{label}, {m} rows with a bias");
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let s = Isa::Scalar;
        assert!(PackedMatrix::pack_for(s, &[0.0; 30], 1, 31, Precision::F32).is_err());
        assert!(PackedMatrix::pack_for(s, &[0.0; 3], 1, 3, Precision::Bf16).is_err());
        let p = PackedMatrix::pack_for(s, &[0.0; 4], 2, 2, Precision::F32).unwrap();
        assert!(p.matmul_t(&[0.0; 3], 2).is_err());
    }
}
