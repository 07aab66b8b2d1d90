//! Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `2Gi`, `1e3`, `128974848`).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid quantity {0:?}")]
pub struct QuantityError(pub String);

/// Parses a quantity into its value in base units (cores for CPU, bytes for memory),
/// as an `f64`. Accepts the binary suffixes (`Ki` … `Ei`), the decimal ones (`n`, `u`,
/// `m`, `k`, `M`, `G`, `T`, `P`, `E`), exponents (`1e3`, `1E3`) and plain numbers.
pub fn parse(q: &str) -> Result<f64, QuantityError> {
    let s = q.trim();
    let err = || QuantityError(q.to_string());
    if s.is_empty() {
        return Err(err());
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let (num, suffix) = match suffix.strip_prefix(['e', 'E']) {
        // exponent form; an `E` alone is the exa suffix
        Some(exp) if !exp.is_empty() => {
            let e: i32 = exp.parse().map_err(|_| err())?;
            let n: f64 = num.parse().map_err(|_| err())?;
            return finite(n * 10f64.powi(e)).ok_or_else(err);
        }
        _ => (num, suffix),
    };
    let n: f64 = num.parse().map_err(|_| err())?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return Err(err()),
    };
    finite(n * mult).ok_or_else(err)
}

fn finite(v: f64) -> Option<f64> {
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// CPU quantity in millicores (rounded up, as the scheduler does).
pub fn cpu_millis(q: &str) -> Result<u64, QuantityError> {
    Ok((parse(q)? * 1000.0 - 1e-9).ceil().max(0.0) as u64)
}

/// Memory quantity in MiB (rounded up).
pub fn memory_mib(q: &str) -> Result<u64, QuantityError> {
    Ok((parse(q)? / (1024.0 * 1024.0) - 1e-9).ceil().max(0.0) as u64)
}

/// A count (`pods`, `nvidia.com/gpu`).
pub fn count(q: &str) -> Result<u64, QuantityError> {
    Ok(parse(q)?.floor() as u64)
}

/// Formats millicores as a quantity (`250m`).
pub fn format_cpu(millis: u64) -> String {
    format!("{millis}m")
}

/// Formats MiB as a quantity (`512Mi`).
pub fn format_memory(mib: u64) -> String {
    format!("{mib}Mi")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(cpu_millis("250m"), Ok(250));
        assert_eq!(cpu_millis("1"), Ok(1000));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("0.1"), Ok(100));
        assert_eq!(cpu_millis("100u"), Ok(1));
        assert_eq!(cpu_millis("2500000n"), Ok(3));
        assert_eq!(cpu_millis("1e3m"), Err(QuantityError("1e3m".into())));
        assert_eq!(cpu_millis("2e0"), Ok(2000));
    }

    #[test]
    fn memory_forms() {
        assert_eq!(memory_mib("512Mi"), Ok(512));
        assert_eq!(memory_mib("2Gi"), Ok(2048));
        assert_eq!(memory_mib("1024Ki"), Ok(1));
        assert_eq!(memory_mib("1048576"), Ok(1));
        assert_eq!(memory_mib("128974848"), Ok(123));
        assert_eq!(memory_mib("1G"), Ok(954));
        assert_eq!(memory_mib("1M"), Ok(1));
        assert_eq!(memory_mib("129e6"), Ok(124));
        assert_eq!(memory_mib("1E"), Ok(953_674_316_407));
        assert_eq!(memory_mib("0"), Ok(0));
    }

    #[test]
    fn counts_and_errors() {
        assert_eq!(count("110"), Ok(110));
        assert_eq!(count("4k"), Ok(4000));
        assert!(parse("").is_err());
        assert!(parse("abc").is_err());
        assert!(parse("12Qi").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("1.2.3").is_err());
    }
}
