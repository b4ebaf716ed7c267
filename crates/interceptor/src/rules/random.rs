//! The seeded random source behind probabilities and random delays.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014): the state advances by `0x9E3779B97F4A7C15` and
//! each output is the state mixed by two xor-shift-multiply rounds. It is written out here,
//! not taken from a crate, so that the sequence for a given seed never changes between
//! versions: rule files that name a seed replay the same faults forever.
//!
//! A uniform number in `[0, 1)` is the top 53 bits of one output times 2⁻⁵³; a standard
//! normal number is Box–Muller over two uniforms (`sqrt(-2 ln(1 - u1)) * cos(2π u2)`).

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub(crate) const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal number (mean 0, deviation 1).
    pub(crate) fn next_normal(&mut self) -> f64 {
        let u1 = self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A seed for rule sets that do not name one: different on every load.
pub(crate) fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_the_published_splitmix64() {
        // Reference values of SplitMix64 for seed 1234567 (from the original C code).
        let mut rng = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431,
                16408922859458223821
            ]
        );
    }

    #[test]
    fn uniform_and_normal_are_in_range_and_centered() {
        let mut rng = SplitMix64::new(7);
        let n = 20_000;
        let mut sum = 0.0;
        let mut sum_normal = 0.0;
        let mut sum_sq = 0.0;
        for _ in 0..n {
            let u = rng.next_f64();
            assert!((0.0..1.0).contains(&u));
            sum += u;
            let z = rng.next_normal();
            assert!(z.is_finite());
            sum_normal += z;
            sum_sq += z * z;
        }
        let n = f64::from(n);
        assert!((sum / n - 0.5).abs() < 0.01);
        assert!((sum_normal / n).abs() < 0.03);
        assert!((sum_sq / n - 1.0).abs() < 0.05);
    }
}
