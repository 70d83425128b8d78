//! GGUF weights whose blocks hold small integers times a scale, minus an offset, per group of
//! consecutive inputs (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K), read row by row as int8 values and
//! f32 group scales and offsets: `value × scale − offset`, computed in f32 in that order, is the
//! weight candle's dequantization gives, bit for bit. The packed f32 kernels
//! ([`crate::kernels`]) keep such weights so, at a quarter of the memory traffic of f32 or less.

use anyhow::{ensure, Result};
use candle_core::quantized::GgmlDType;

/// A row-major `[n, k]` weight of GGUF blocks of a type [`IntBlocks::supports`].
pub(crate) struct IntBlocks<'a> {
    dtype: GgmlDType,
    bytes: &'a [u8],
    k: usize,
    row_bytes: usize,
}

/// Inputs per group of a scale, and the bytes and inputs of a block, per type.
fn shape(dtype: GgmlDType) -> Option<(usize, usize, usize)> {
    use GgmlDType::*;
    Some(match dtype {
        Q4_0 => (32, 18, 32),
        Q4_1 => (32, 20, 32),
        Q5_0 => (32, 22, 32),
        Q8_0 => (32, 34, 32),
        Q4K => (32, 144, 256),
        Q6K => (16, 210, 256),
        _ => return None,
    })
}

/// The little-endian f16 at byte `at` of `b`, widened to f32.
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

impl<'a> IntBlocks<'a> {
    /// Whether blocks of `dtype` are read here.
    pub(crate) fn supports(dtype: GgmlDType) -> bool {
        shape(dtype).is_some()
    }

    /// The weight in `bytes`: `n` rows of `k / block` blocks; an error names what does not fit.
    pub(crate) fn new(dtype: GgmlDType, bytes: &'a [u8], n: usize, k: usize) -> Result<Self> {
        let Some((_, block_bytes, block)) = shape(dtype) else {
            anyhow::bail!("{dtype:?} weights are not read as int8 blocks");
        };
        ensure!(
            n > 0 && k > 0 && k.is_multiple_of(block),
            "a {dtype:?} weight needs whole blocks of {block} inputs, got {n}×{k}"
        );
        let row_bytes = k / block * block_bytes;
        ensure!(
            bytes.len() == n * row_bytes,
            "{dtype:?} weight has {} bytes, expected {} for {n}×{k}",
            bytes.len(),
            n * row_bytes
        );
        Ok(IntBlocks {
            dtype,
            bytes,
            k,
            row_bytes,
        })
    }

    /// Rows (outputs) of the weight.
    pub(crate) fn rows(&self) -> usize {
        self.bytes.len() / self.row_bytes
    }

    /// Inputs per row.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Inputs per scale (and offset).
    pub(crate) fn group(&self) -> usize {
        shape(self.dtype).expect("checked in new").0
    }

    /// The smallest and largest value a block of this type can hold.
    pub(crate) fn value_range(&self) -> (i8, i8) {
        use GgmlDType::*;
        match self.dtype {
            Q4_0 => (-8, 7),
            Q4_1 | Q4K => (0, 15),
            Q5_0 => (-16, 15),
            Q6K => (-32, 31),
            _ => (i8::MIN, i8::MAX),
        }
    }

    /// Whether the weights have offsets (else they are all zero).
    pub(crate) fn has_offsets(&self) -> bool {
        matches!(self.dtype, GgmlDType::Q4_1 | GgmlDType::Q4K)
    }

    /// Row `r`: its `k` values, and the scale and offset of each group of
    /// [`IntBlocks::group`] inputs (`k / group` each).
    pub(crate) fn decode_row(
        &self,
        r: usize,
        values: &mut [i8],
        scales: &mut [f32],
        offsets: &mut [f32],
    ) {
        let (_, block_bytes, block) = shape(self.dtype).expect("checked in new");
        let groups = block / self.group();
        for (i, b) in self.row(r).chunks_exact(block_bytes).enumerate() {
            let v = &mut values[i * block..][..block];
            let s = &mut scales[i * groups..][..groups];
            let o = &mut offsets[i * groups..][..groups];
            self.decode_block(b, v, s, o);
        }
        debug_assert_eq!(values.len(), self.k);
    }

    /// Row `r` dequantized into `out` (`k` values): `value × scale − offset` in f32, the
    /// weight candle's dequantization gives, block by block without a decoded copy of the row.
    pub(crate) fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (group, block_bytes, block) = shape(self.dtype).expect("checked in new");
        let groups = block / group;
        let (mut v, mut s, mut o) = ([0i8; 256], [0f32; 16], [0f32; 16]);
        let (v, s, o) = (&mut v[..block], &mut s[..groups], &mut o[..groups]);
        for (b, out) in self
            .row(r)
            .chunks_exact(block_bytes)
            .zip(out.chunks_exact_mut(block))
        {
            self.decode_block(b, v, s, o);
            let groups = out.chunks_exact_mut(group).zip(v.chunks_exact(group));
            for ((out, v), (&scale, &offset)) in groups.zip(s.iter().zip(o.iter())) {
                for (out, &v) in out.iter_mut().zip(v) {
                    *out = f32::from(v) * scale - offset;
                }
            }
        }
    }

    /// The bytes of row `r`.
    fn row(&self, r: usize) -> &[u8] {
        &self.bytes[r * self.row_bytes..][..self.row_bytes]
    }

    /// Block `b`'s values, and the scale and offset of each of its groups.
    fn decode_block(&self, b: &[u8], v: &mut [i8], s: &mut [f32], o: &mut [f32]) {
        o.fill(0.0);
        match self.dtype {
            GgmlDType::Q4_0 => {
                s[0] = f16_at(b, 0);
                nibbles(&b[2..18], v, 8);
            }
            GgmlDType::Q4_1 => {
                // `q·d + m` is `q·d − (−m)` exactly.
                (s[0], o[0]) = (f16_at(b, 0), -f16_at(b, 2));
                nibbles(&b[4..20], v, 0);
            }
            GgmlDType::Q5_0 => {
                s[0] = f16_at(b, 0);
                let high = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                for (j, &q) in b[6..22].iter().enumerate() {
                    let h0 = ((high >> j) << 4) & 0x10;
                    let h1 = (high >> (j + 12)) & 0x10;
                    v[j] = ((u32::from(q & 0x0F) | h0) as i32 - 16) as i8;
                    v[j + 16] = ((u32::from(q >> 4) | h1) as i32 - 16) as i8;
                }
            }
            GgmlDType::Q8_0 => {
                s[0] = f16_at(b, 0);
                v.iter_mut().zip(&b[2..34]).for_each(|(v, &q)| *v = q as i8);
            }
            GgmlDType::Q4K => q4_k(b, v, s, o),
            GgmlDType::Q6K => q6_k(b, v, s),
            _ => unreachable!("checked in new"),
        }
    }
}

/// 16 bytes of two 4-bit values each: the low nibbles are inputs 0–15, the high ones 16–31,
/// each minus `bias`.
fn nibbles(q: &[u8], v: &mut [i8], bias: i8) {
    for (j, &q) in q.iter().enumerate() {
        v[j] = (q & 0x0F) as i8 - bias;
        v[j + 16] = (q >> 4) as i8 - bias;
    }
}

/// A Q4_K block (f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and minimums, 128 bytes of
/// nibbles): group `g` is `d·scale_g · q − dmin·min_g`.
fn q4_k(b: &[u8], v: &mut [i8], s: &mut [f32], o: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (packed, q) = (&b[4..16], &b[16..144]);
    for g in 0..8 {
        let (scale, min) = if g < 4 {
            (packed[g] & 63, packed[g + 4] & 63)
        } else {
            (
                (packed[g + 4] & 0x0F) | ((packed[g - 4] >> 6) << 4),
                (packed[g + 4] >> 4) | ((packed[g] >> 6) << 4),
            )
        };
        (s[g], o[g]) = (d * f32::from(scale), dmin * f32::from(min));
        // Pairs of groups share 32 bytes: the low nibbles, then the high ones.
        let bytes = &q[g / 2 * 32..][..32];
        for (v, &q) in v[g * 32..][..32].iter_mut().zip(bytes) {
            *v = if g % 2 == 0 { q & 0x0F } else { q >> 4 } as i8;
        }
    }
}

/// A Q6_K block (128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales, f16 `d`):
/// group `g` of 16 inputs is `(d·scale_g) · q` with `q` in −32..32.
fn q6_k(b: &[u8], v: &mut [i8], s: &mut [f32]) {
    let (low, high, scales, d) = (&b[..128], &b[128..192], &b[192..208], f16_at(b, 208));
    for (s, &sc) in s.iter_mut().zip(scales) {
        *s = d * f32::from(sc as i8);
    }
    for half in 0..2 {
        let (low, high, v) = (&low[64 * half..], &high[32 * half..], &mut v[128 * half..]);
        for l in 0..32 {
            let (a, c, h) = (low[l], low[l + 32], high[l]);
            v[l] = ((a & 0x0F) | ((h & 3) << 4)) as i8 - 32;
            v[l + 32] = ((c & 0x0F) | (((h >> 2) & 3) << 4)) as i8 - 32;
            v[l + 64] = ((a >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32;
            v[l + 96] = ((c >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    /// Any bytes a file holds decode to values within [`IntBlocks::value_range`] (which the
    /// int8 products' int16 sums rely on), and the range is tight: both ends occur.
    #[test]
    fn values_stay_within_the_types_range() {
        use GgmlDType::*;
        let k = 256;
        let zeros = Tensor::zeros((1, k), candle_core::DType::F32, &Device::Cpu).unwrap();
        for dtype in [Q4_0, Q4_1, Q5_0, Q8_0, Q4K, Q6K] {
            let len = QTensor::quantize(&zeros, dtype)
                .unwrap()
                .data()
                .unwrap()
                .len();
            let mut seen = std::collections::BTreeSet::new();
            for seed in 0..20u32 {
                let bytes: Vec<u8> = (0..len as u32)
                    .map(|i| ((i + seed * 7919).wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                let blocks = IntBlocks::new(dtype, &bytes, 1, k).unwrap();
                let groups = k / blocks.group();
                let (mut v, mut s, mut o) = (vec![0i8; k], vec![0f32; groups], vec![0f32; groups]);
                blocks.decode_row(0, &mut v, &mut s, &mut o);
                seen.extend(v);
            }
            let (lo, hi) = IntBlocks::new(dtype, &vec![0; len], 1, k)
                .unwrap()
                .value_range();
            assert_eq!(seen.first().zip(seen.last()), Some((&lo, &hi)), "{dtype:?}");
        }
    }

    /// Every supported type, quantized by candle from uneven data: `value × scale − offset`
    /// equals candle's dequantized weight bit for bit, and bad sizes are refused.
    #[test]
    fn decoded_rows_are_candles_dequantized_weights() {
        use GgmlDType::*;
        let (n, k) = (5, 512);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919 % 1013) as f32 - 480.0) / 97.0 + (i % 5) as f32 * 0.3)
            .collect();
        let t = Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap();
        for dtype in [Q4_0, Q4_1, Q5_0, Q8_0, Q4K, Q6K] {
            let q = QTensor::quantize(&t, dtype).unwrap();
            let dense: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let data = q.data().unwrap();
            let blocks = IntBlocks::new(dtype, &data, n, k).unwrap();
            let g = blocks.group();
            let (mut v, mut s, mut o) = (vec![0i8; k], vec![0f32; k / g], vec![0f32; k / g]);
            for r in 0..n {
                blocks.decode_row(r, &mut v, &mut s, &mut o);
                for j in 0..k {
                    let got = f32::from(v[j]) * s[j / g] - o[j / g];
                    let want = dense[r * k + j];
                    assert_eq!(got.to_bits(), want.to_bits(), "{dtype:?} row {r} input {j}");
                }
                assert!(blocks.has_offsets() || o.iter().all(|&o| o == 0.0));
            }
            assert!(IntBlocks::new(dtype, &data[1..], n, k).is_err());
            assert!(IntBlocks::new(dtype, &data, n, k + 1).is_err());
        }
        assert!(!IntBlocks::supports(F16));
    }
}
