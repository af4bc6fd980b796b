//! Python's text form of numbers: `repr(float)` (raw, CSV and JSON values, names built with
//! `str()` of a float), `str()` of ints, and `%`-formatting (`'%d' % x`, `'%.2f' % x`, `'%g' % x`,
//! `fmt % value` as `aliasQuery` and `legendValue` use it). Output is CPython 3.11's, character
//! for character; nothing here knows what the text is for.

use super::PyError;

/// Shortest round-trip digits and decimal exponent of a finite, non-zero `x`:
/// `x = 0.d1d2d3… × 10^(exp+1)`, i.e. `d1.d2d3… × 10^exp`.
fn shortest(x: f64) -> (String, i32) {
    let s = format!("{:e}", x.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Python's `repr(float)`: shortest round-trip digits, positional for 1e-4 ≤ |x| < 1e16
/// (always with a `.0` or fraction), otherwise `d.ddde±XX`; `inf`, `-inf`, `nan`.
pub fn repr_f64(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let (digits, exp) = shortest(x);
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp >= 0 {
            if n > exp + 1 {
                format!(
                    "{}.{}",
                    &digits[..(exp + 1) as usize],
                    &digits[(exp + 1) as usize..]
                )
            } else {
                format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
            }
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        format!(
            "{sign}{mant}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// Python's `'%g' % x`: 6 significant digits, trailing zeros removed, exponent form when the
/// exponent is < -4 or ≥ 6.
pub fn format_g(x: f64) -> String {
    format_g_prec(x, 6)
}

/// Python's `'%.{prec}g' % x`.
pub fn format_g_prec(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let prec = prec.max(1);
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let s = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Python's `str()` of a number that may be integral: ints print without `.0`.
pub fn str_number(x: f64, is_int: bool) -> String {
    if is_int && x.fract() == 0.0 && x.abs() < 1e18 {
        format!("{}", x as i64)
    } else {
        repr_f64(x)
    }
}

/// Python's `'%d' % x` for a float: truncated toward zero, all digits; errors as Python does
/// for `inf` and `nan`.
pub fn format_d(x: f64) -> Result<String, PyError> {
    if x.is_nan() {
        return Err(PyError::new("cannot convert float NaN to integer"));
    }
    if x.is_infinite() {
        return Err(PyError::new("cannot convert float infinity to integer"));
    }
    let t = x.trunc();
    Ok(if t == 0.0 {
        "0".to_string()
    } else {
        format!("{t:.0}")
    })
}

/// Python's `'%.Nf' % x`.
pub fn format_f(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{x:.prec$}")
}

/// Python's `'%.Ne' % x`: mantissa with `prec` decimals, exponent signed with at least two
/// digits.
pub fn format_e(x: f64, prec: usize, upper: bool) -> String {
    if !x.is_finite() {
        let s = format_f(x, 0);
        return if upper { s.to_uppercase() } else { s };
    }
    let s = format!("{x:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    format!(
        "{mant}{e}{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Python's `fmt % value` for a format with exactly one conversion and one float argument
/// (graphite-web's `aliasQuery` formats the last value so). Supports the flags `-+ 0#`, width,
/// precision and the conversions `d i u f F e E g G s r a %`; Python's errors (no conversion,
/// two conversions, `%x` of a float, a mapping key) are a [`PyError`] with its message.
pub fn percent_format(fmt: &str, value: f64) -> Result<String, PyError> {
    let bad = |m: &str| PyError::new(m);
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut used = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        if i < chars.len() && chars[i] == '(' {
            return Err(bad("format requires a mapping"));
        }
        let (mut left, mut plus, mut space, mut zero) = (false, false, false, false);
        while i < chars.len() && "-+ 0#".contains(chars[i]) {
            match chars[i] {
                '-' => left = true,
                '+' => plus = true,
                ' ' => space = true,
                '0' => zero = true,
                _ => {}
            }
            i += 1;
        }
        let mut width = 0usize;
        if i < chars.len() && chars[i] == '*' {
            return Err(bad("not enough arguments for format string"));
        }
        while i < chars.len() && chars[i].is_ascii_digit() {
            width = width
                .saturating_mul(10)
                .saturating_add(chars[i] as usize - '0' as usize);
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = 0usize;
            while i < chars.len() && chars[i].is_ascii_digit() {
                p = p
                    .saturating_mul(10)
                    .saturating_add(chars[i] as usize - '0' as usize);
                i += 1;
            }
            prec = Some(p);
        }
        while i < chars.len() && "hlL".contains(chars[i]) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(bad("incomplete format"));
        };
        i += 1;
        if conv == '%' {
            out.push('%');
            continue;
        }
        if used {
            return Err(bad("not enough arguments for format string"));
        }
        used = true;
        if width > 10_000 || prec.is_some_and(|p| p > 10_000) {
            return Err(bad("format width or precision too large"));
        }
        let numeric = !matches!(conv, 's' | 'r' | 'a');
        let mut body = match conv {
            'd' | 'i' | 'u' => format_d(value)?,
            'f' | 'F' => {
                let s = format_f(value, prec.unwrap_or(6));
                if conv == 'F' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            'e' | 'E' => format_e(value, prec.unwrap_or(6), conv == 'E'),
            'g' | 'G' => {
                let s = format_g_prec(value, prec.unwrap_or(6).max(1));
                if conv == 'G' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            's' | 'r' | 'a' => {
                let s = repr_f64(value);
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'x' | 'X' | 'o' | 'c' => {
                return Err(bad(&format!(
                    "%{conv} format: an integer is required, not float"
                )))
            }
            other => return Err(bad(&format!("unsupported format character '{other}'"))),
        };
        if numeric && !body.starts_with('-') {
            if plus {
                body.insert(0, '+');
            } else if space {
                body.insert(0, ' ');
            }
        }
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
            if left {
                body.push_str(&" ".repeat(pad));
            } else if zero && numeric && value.is_finite() {
                let sign_len = usize::from(body.starts_with(['-', '+', ' ']));
                body.insert_str(sign_len, &"0".repeat(pad));
            } else {
                body.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&body);
    }
    if !used {
        return Err(bad("not all arguments converted during string formatting"));
    }
    Ok(out)
}

/// Left-justifies `s` to `width` characters, as Python's `'%-Ns' % s` (and `str.ljust`).
pub fn ljust(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789.123, "123456789.123"),
            (2.5e-10, "2.5e-10"),
            (0.0, "0.0"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(repr_f64(x), want, "{x}");
        }
    }

    #[test]
    fn g_matches_python() {
        for (x, want) in [
            (2.0, "2"),
            (0.5, "0.5"),
            (10.0, "10"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.25, "-3.25"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1.0 / 3.0, "0.333333"),
        ] {
            assert_eq!(format_g(x), want, "{x}");
        }
    }

    #[test]
    fn percent_formats_match_python() {
        // Expected strings are CPython 3.11's.
        assert_eq!(format_d(-2.7).unwrap(), "-2");
        assert_eq!(format_d(1e20).unwrap(), "100000000000000000000");
        assert!(format_d(f64::INFINITY).is_err());
        assert_eq!(format_e(1234.5, 2, false), "1.23e+03");
        assert_eq!(
            percent_format("Channel %d MHz", 433.9).unwrap(),
            "Channel 433 MHz"
        );
        assert_eq!(percent_format("%.2f%%", 1.005).unwrap(), "1.00%");
        assert_eq!(percent_format("[%-6s]", 1.5).unwrap(), "[1.5   ]");
        assert_eq!(percent_format("%+08.3f", 3.25159).unwrap(), "+003.252");
        assert_eq!(percent_format("%g", 1e-5).unwrap(), "1e-05");
        assert!(percent_format("plain", 1.0).is_err());
        assert!(percent_format("%d %d", 1.0).is_err());
        assert!(percent_format("%x", 1.0).is_err());
        assert_eq!(ljust("ab", 4), "ab  ");
        assert_eq!(ljust("abcde", 4), "abcde");
    }
}
