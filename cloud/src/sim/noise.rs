//! Counter-based deterministic noise.
//!
//! The market and the workload usage are sampled at arbitrary (pool, hour) or (pod, time)
//! points in any order; a sequential RNG would make values depend on query order. A
//! strong 64-bit mixer (SplitMix64's finaliser) over the coordinates gives independent,
//! reproducible draws instead. Inventory generation, which is naturally sequential, uses a
//! seeded ChaCha RNG.

/// SplitMix64 finaliser: a bijective mixer with good avalanche.
fn fmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines two values into one well-mixed key.
pub fn mix(a: u64, b: u64) -> u64 {
    fmix(a ^ fmix(b.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// Stable 64-bit key of a string (FNV-1a, then mixed); stable across builds and
/// platforms, unlike `std`'s `DefaultHasher`.
pub fn str_key(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix(h)
}

/// Uniform in [0, 1) from a key (53 random bits).
pub fn unit(key: u64) -> f64 {
    (fmix(key) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal from a key (Box–Muller).
pub fn normal(key: u64) -> f64 {
    let u1 = unit(mix(key, 0x51)).max(f64::MIN_POSITIVE);
    let u2 = unit(mix(key, 0x52));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_draws_have_unit_moments() {
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|i| normal(mix(42, i))).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn unit_is_in_range_and_keys_differ() {
        assert!((0..1000).all(|i| (0.0..1.0).contains(&unit(i))));
        assert_ne!(str_key("m5.large"), str_key("m5.xlarge"));
    }
}
