//! numpy's default random generator, `np.random.default_rng(seed)`: PCG64 (128-bit LCG
//! with the XSL-RR output) seeded through `SeedSequence`, and the few `Generator` methods
//! sacrebleu's significance tests use (`integers`, `integers(2, dtype=bool)`, `choice`),
//! reproducing numpy's streams bit for bit.

/// `SeedSequence` hashing constants (numpy `bit_generator.pyx`).
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// The PCG64 multiplier.
const PCG_MULT: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;

/// numpy's `SeedSequence` without spawn keys: an entropy pool of four 32-bit words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSequence {
    pool: [u32; POOL_SIZE],
}

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

impl SeedSequence {
    /// The sequence for an integer seed, as `SeedSequence(seed)` (the integer is split
    /// into 32-bit words, least significant first).
    pub fn from_seed(seed: u128) -> Self {
        let mut words = Vec::new();
        let mut x = seed;
        loop {
            words.push(x as u32);
            x >>= 32;
            if x == 0 {
                break;
            }
        }
        Self::from_entropy_words(&words)
    }

    /// The sequence for entropy given as 32-bit words.
    pub fn from_entropy_words(entropy: &[u32]) -> Self {
        let mut hash_const = INIT_A;
        let mut pool = [0u32; POOL_SIZE];
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
        }
        for src in 0..POOL_SIZE {
            for dst in 0..POOL_SIZE {
                if src != dst {
                    let h = hashmix(pool[src], &mut hash_const);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        for &word in entropy.iter().skip(POOL_SIZE) {
            for slot in pool.iter_mut() {
                let h = hashmix(word, &mut hash_const);
                *slot = mix(*slot, h);
            }
        }
        SeedSequence { pool }
    }

    /// `generate_state(n_words, np.uint32)`.
    pub fn generate_state_u32(&self, n_words: usize) -> Vec<u32> {
        let mut hash_const = INIT_B;
        (0..n_words)
            .map(|i| {
                let mut v = self.pool[i % POOL_SIZE] ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                v = v.wrapping_mul(hash_const);
                v ^ (v >> XSHIFT)
            })
            .collect()
    }

    /// `generate_state(n_words, np.uint64)` (pairs of 32-bit words, little-endian).
    pub fn generate_state_u64(&self, n_words: usize) -> Vec<u64> {
        self.generate_state_u32(2 * n_words)
            .chunks(2)
            .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
            .collect()
    }
}

/// numpy's PCG64 bit generator together with the `Generator` methods sacrebleu uses.
#[derive(Debug, Clone)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
    /// numpy serves 32-bit draws from halves of one 64-bit draw (low half first).
    buffered_u32: Option<u32>,
}

impl Pcg64 {
    /// `np.random.default_rng(seed)`.
    pub fn new(seed: u128) -> Self {
        Self::from_seed_sequence(&SeedSequence::from_seed(seed))
    }

    /// `np.random.default_rng(None)`: seeded from 128 bits of OS entropy.
    pub fn from_os_entropy() -> std::io::Result<Self> {
        use std::io::Read;
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self::from_seed_sequence(&SeedSequence::from_entropy_words(
            &words,
        )))
    }

    /// PCG64 seeded by a `SeedSequence`, as numpy's `PCG64(seed_seq)`.
    pub fn from_seed_sequence(seq: &SeedSequence) -> Self {
        let v = seq.generate_state_u64(4);
        let init_state = (u128::from(v[0]) << 64) | u128::from(v[1]);
        let init_seq = (u128::from(v[2]) << 64) | u128::from(v[3]);
        let mut rng = Pcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
            buffered_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let hi = (self.state >> 64) as u64;
        let lo = self.state as u64;
        (hi ^ lo).rotate_right((self.state >> 122) as u32)
    }

    /// The next 32 random bits (numpy's buffered `next_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.buffered_u32.take() {
            return v;
        }
        let v = self.next_u64();
        self.buffered_u32 = Some((v >> 32) as u32);
        v as u32
    }

    /// One value in `0..=range` by Lemire's method on 32-bit draws (numpy's
    /// `buffered_bounded_lemire_uint32`).
    fn bounded_lemire_u32(&mut self, range: u32) -> u32 {
        let excl = u64::from(range) + 1;
        let mut m = u64::from(self.next_u32()) * excl;
        let mut leftover = m as u32;
        if u64::from(leftover) < excl {
            let threshold = ((u64::from(u32::MAX) - u64::from(range)) % excl) as u32;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * excl;
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// One value in `0..=range` by Lemire's method on 64-bit draws (numpy's
    /// `bounded_lemire_uint64`).
    fn bounded_lemire_u64(&mut self, range: u64) -> u64 {
        let excl = u128::from(range) + 1;
        let mut m = u128::from(self.next_u64()) * excl;
        let mut leftover = m as u64;
        if u128::from(leftover) < excl {
            let threshold = ((u128::from(u64::MAX) - u128::from(range)) % excl) as u64;
            while leftover < threshold {
                m = u128::from(self.next_u64()) * excl;
                leftover = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// `Generator.integers(low, high, size=count)` with the default int64 dtype: `count`
    /// values in `low..high`. Panics if `high <= low`.
    pub fn integers(&mut self, low: i64, high: i64, count: usize) -> Vec<i64> {
        assert!(high > low, "integers: empty range {low}..{high}");
        let range = (high as i128 - 1 - low as i128) as u64;
        let draw: Box<dyn FnMut(&mut Self) -> u64> = if range == 0 {
            Box::new(|_| 0)
        } else if range == u64::from(u32::MAX) {
            Box::new(|r| u64::from(r.next_u32()))
        } else if range < u64::from(u32::MAX) {
            Box::new(move |r| u64::from(r.bounded_lemire_u32(range as u32)))
        } else if range == u64::MAX {
            Box::new(|r| r.next_u64())
        } else {
            Box::new(move |r| r.bounded_lemire_u64(range))
        };
        let mut draw = draw;
        (0..count)
            .map(|_| (low as i128 + draw(self) as i128) as i64)
            .collect()
    }

    /// `Generator.integers(2, size=count, dtype=bool)`: one bit per value, 32 values per
    /// 32-bit draw, least significant bit first.
    pub fn bools(&mut self, count: usize) -> Vec<bool> {
        let mut out = vec![false; count];
        BoolFill::default().fill(self, &mut out);
        out
    }

    /// `Generator.choice(n, size=count, replace=True)`: `count` indices in `0..n`,
    /// the same stream as `integers(0, n, count)`.
    pub fn choice(&mut self, n: usize, count: usize) -> Vec<usize> {
        self.integers(0, n as i64, count)
            .into_iter()
            .map(|v| v as usize)
            .collect()
    }
}

/// The state of one `integers(2, size=…, dtype=bool)` call, so that a large call can be
/// produced in consecutive pieces (numpy keeps the partly used 32-bit draw across rows).
#[derive(Debug, Clone, Default)]
pub struct BoolFill {
    buf: u32,
    bits_left: u32,
}

impl BoolFill {
    /// The next `out.len()` values of the call.
    pub fn fill(&mut self, rng: &mut Pcg64, out: &mut [bool]) {
        for o in out {
            if self.bits_left == 0 {
                self.buf = rng.next_u32();
                self.bits_left = 31;
            } else {
                self.buf >>= 1;
                self.bits_left -= 1;
            }
            *o = self.buf & 1 != 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.random.default_rng(12345).choice(10, (1000, 10), replace=True)[0]`.
    #[test]
    fn first_bootstrap_row_matches_numpy() {
        let mut rng = Pcg64::new(12345);
        assert_eq!(rng.choice(10, 10), [6, 2, 7, 3, 2, 7, 6, 6, 9, 3]);
    }

    /// Expected values printed by numpy 2.4.6:
    /// ```python
    /// r = np.random.default_rng(42)
    /// r.integers(0, 7, 40); r.integers(2, size=70, dtype=bool); r.choice(3000, 12)
    /// r.integers(0, 2**32, 5); r.integers(0, 2**40, 5); r.integers(-5, 5, 9)
    /// ```
    /// in that order on one generator, so the 32-bit buffering between calls is covered.
    #[test]
    fn long_stream_matches_numpy() {
        let mut r = Pcg64::new(42);
        assert_eq!(
            r.integers(0, 7, 40),
            [
                0, 5, 4, 3, 3, 6, 0, 4, 1, 0, 3, 6, 5, 5, 5, 5, 3, 0, 5, 3, 3, 2, 1, 6, 5, 4, 2, 5,
                3, 3, 3, 1, 0, 3, 6, 0, 6, 5, 1, 4
            ]
        );
        let bits: Vec<u8> = r.bools(70).into_iter().map(u8::from).collect();
        assert_eq!(
            bits,
            [
                1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1,
                0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0,
                0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0
            ]
        );
        assert_eq!(
            r.choice(3000, 12),
            [1063, 203, 2912, 1337, 2679, 2033, 2335, 2279, 583, 1091, 1400, 1493]
        );
        assert_eq!(
            r.integers(0, 1 << 32, 5),
            [188135741, 2347498144, 662668322, 3192775211, 2933672915]
        );
        assert_eq!(
            r.integers(0, 1 << 40, 5),
            [
                818874650348,
                1063788200797,
                358248769897,
                407324754407,
                516282074387
            ]
        );
        assert_eq!(r.integers(-5, 5, 9), [2, -4, -1, -4, 1, -1, -2, -3, 0]);
    }

    #[test]
    fn bool_fill_in_pieces_is_one_call() {
        let whole = Pcg64::new(7).bools(100);
        let mut rng = Pcg64::new(7);
        let mut fill = BoolFill::default();
        let mut pieces = vec![false; 100];
        for chunk in pieces.chunks_mut(13) {
            fill.fill(&mut rng, chunk);
        }
        assert_eq!(pieces, whole);
    }

    /// `SeedSequence(2**70 + 5)`: `.pool` and `.generate_state(3)`; `default_rng(0)`'s
    /// `bit_generator.random_raw(3)`; `default_rng(12345).integers(0, 100000, 3)`.
    #[test]
    fn seeding_matches_numpy() {
        let s = SeedSequence::from_seed((1u128 << 70) + 5);
        assert_eq!(s.pool, [3196512354, 85443530, 3968373662, 1654568391]);
        assert_eq!(s.generate_state_u32(3), [4017225302, 169096299, 2618547816]);
        let mut r = Pcg64::new(0);
        let raw: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            raw,
            [
                11749869230777074271,
                4976686463289251617,
                755828109848996024
            ]
        );
        assert_eq!(
            Pcg64::new(12345).integers(0, 100000, 3),
            [69921, 22733, 78864]
        );
    }
}
