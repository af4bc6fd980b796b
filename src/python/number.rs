//! Python's arithmetic where graphite-web's values show it: the built-in `round(x, n)` (ties
//! to even on the exact binary value, negative `n` too), and `math.pow` / `math.exp`, which
//! raise where IEEE arithmetic would return an infinity or NaN.

use super::PyError;

/// Python's `round(x, ndigits)` for a float: the decimal rounding of the exact binary value,
/// ties to even; `inf`/`nan` pass through.
pub fn round(x: f64, ndigits: i64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    if ndigits >= 0 {
        if ndigits > 340 {
            return x;
        }
        // Rust's fixed-precision formatting rounds the exact value, ties to even, as CPython's
        // dtoa-based round does.
        return format!("{:.*}", ndigits as usize, x).parse().unwrap_or(x);
    }
    // Negative ndigits: round to a multiple of 10^-ndigits using the exact decimal expansion.
    let k = ndigits.unsigned_abs() as usize;
    let exact = format!("{:.0}", x.abs().trunc());
    let frac_nonzero = x.fract() != 0.0;
    let digits = exact.as_bytes();
    if k > digits.len() {
        return 0.0 * x.signum();
    }
    let keep = digits.len() - k;
    let mut head: Vec<u8> = digits[..keep].to_vec();
    let tail = &digits[keep..];
    let half = tail[0] > b'5'
        || (tail[0] == b'5' && (tail[1..].iter().any(|&d| d != b'0') || frac_nonzero));
    let tie = tail[0] == b'5' && tail[1..].iter().all(|&d| d == b'0') && !frac_nonzero;
    let last_odd = head.last().is_some_and(|d| (d - b'0') % 2 == 1);
    if half || (tie && last_odd) {
        let mut i = head.len();
        loop {
            if i == 0 {
                head.insert(0, b'1');
                break;
            }
            i -= 1;
            if head[i] == b'9' {
                head[i] = b'0';
            } else {
                head[i] += 1;
                break;
            }
        }
    }
    let mut s = String::from_utf8(head).unwrap_or_default();
    if s.is_empty() {
        s.push('0');
    }
    s.push_str(&"0".repeat(k));
    let v: f64 = s.parse().unwrap_or(0.0);
    if x < 0.0 {
        -v
    } else {
        v
    }
}

/// Python's `math.pow(a, b)` as graphite-web's `safePow` uses it: `None` where Python raises
/// (a negative base with a fractional exponent, zero to a negative power, overflow).
pub fn math_pow(a: f64, b: f64) -> Option<f64> {
    let r = a.powf(b);
    if a.is_finite() && b.is_finite() && !r.is_finite() {
        return None;
    }
    Some(r)
}

/// Python's `math.exp`: `OverflowError` where a finite argument overflows.
pub fn math_exp(x: f64) -> Result<f64, PyError> {
    let r = x.exp();
    if r.is_infinite() && x.is_finite() {
        return Err(PyError::new("math range error (exp overflow)"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_pow_exp_match_python() {
        // Expected values are CPython 3.11's.
        assert_eq!(round(2.675, 2), 2.67);
        assert_eq!(round(0.125, 2), 0.12);
        assert_eq!(round(2.5, 0), 2.0);
        assert_eq!(round(1234.5, -1), 1230.0);
        assert_eq!(round(1250.0, -2), 1200.0);
        assert_eq!(round(1350.0, -2), 1400.0);
        assert_eq!(round(1250.0001, -2), 1300.0);
        assert_eq!(round(-1250.0001, -2), -1300.0);
        assert_eq!(round(49.0, -2), 0.0);
        assert_eq!(round(12.0, -5), 0.0);
        assert!(round(f64::NAN, 3).is_nan());
        assert_eq!(math_pow(-8.0, 1.0 / 3.0), None);
        assert_eq!(math_pow(0.0, -1.0), None);
        assert_eq!(math_pow(f64::NAN, 0.0), Some(1.0));
        assert_eq!(math_exp(0.0), Ok(1.0));
        assert!(math_exp(1000.0).is_err());
        assert_eq!(math_exp(f64::NEG_INFINITY), Ok(0.0));
    }
}
