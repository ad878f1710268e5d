//! Human-readable sizes and durations, as Docker's `go-units` prints them.
//!
//! Docker formats sizes with Go's `%.*g` verb, which has its own rules for
//! switching to exponent notation ("1e+03MB" is a real docker output), so
//! the `%g` logic is reproduced here instead of using Rust's float
//! formatting directly.

/// Decimal unit suffixes used by `HumanSize` (note the lower-case "kB").
const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
/// Binary unit suffixes used by `BytesSize`.
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits ("4.26MB").
pub(crate) fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (size, unit) = size_and_unit(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", go_format_g(size, precision))
}

/// `units.HumanSize`: decimal units with 4 significant digits.
pub(crate) fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// `units.BytesSize`: binary units with 4 significant digits ("1.944GiB").
pub(crate) fn bytes_size(size: f64) -> String {
    let (size, unit) = size_and_unit(size, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", go_format_g(size, 4))
}

/// `units.HumanDuration` for a duration given in seconds ("About a minute", "2 days").
pub(crate) fn human_duration(secs: f64) -> String {
    let seconds = secs.trunc() as i64;
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0).trunc() as i64;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5).trunc() as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0).trunc() as i64 / 24 / 365)
}

/// "N ago" for a Unix timestamp, as docker's `CreatedSince` columns print it.
pub(crate) fn human_since(unix_secs: i64) -> String {
    let now = chrono::Utc::now();
    let now_secs = now.timestamp() as f64 + f64::from(now.timestamp_subsec_nanos()) / 1e9;
    format!("{} ago", human_duration(now_secs - unix_secs as f64))
}

/// Go's `fmt.Sprintf("%.*g", precision, v)`.
///
/// The value is rounded to `precision` significant digits; exponent notation
/// is used when the decimal exponent is below -4 or not below the precision,
/// and trailing zeros are dropped (Go's `%g` without the `#` flag).
pub(crate) fn go_format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_string()
        } else if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    let prec = precision.max(1);
    let neg = v < 0.0;
    // "d.ddde±x": the digits rounded to `prec` significant places.
    let sci = format!("{:.*e}", prec - 1, v.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i64 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i64;
    let dp = exp + 1;

    let mut eprec = prec as i64;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        let shown = (prec as i64).min(nd) as usize;
        out.push_str(&digits[..1]);
        if shown > 1 {
            out.push('.');
            out.push_str(&digits[1..shown]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exp.abs()));
        return out;
    }
    let mut p = prec as i64;
    if p > dp {
        p = nd;
    }
    let frac = (p - dp).max(0);
    let digit_at = |i: i64| -> char {
        if i >= 0 && i < nd {
            digits.as_bytes()[i as usize] as char
        } else {
            '0'
        }
    };
    if dp > 0 {
        for i in 0..dp {
            out.push(digit_at(i));
        }
    } else {
        out.push('0');
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac {
            out.push(digit_at(dp + i));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_uses_three_significant_digits() {
        assert_eq!(human_size_with_precision(4_263_176.0, 3), "4.26MB");
        assert_eq!(human_size_with_precision(1_990_000.0, 3), "1.99MB");
        assert_eq!(human_size_with_precision(3.0, 3), "3B");
        assert_eq!(human_size_with_precision(0.0, 3), "0B");
        assert_eq!(human_size_with_precision(1000.0, 3), "1kB");
        assert_eq!(human_size_with_precision(12_000.0, 3), "12kB");
        assert_eq!(human_size_with_precision(120_000.0, 3), "120kB");
    }

    #[test]
    fn human_size_switches_to_exponent_like_go() {
        // 999.9 kB rounds to 1000 with 3 digits, which Go prints as 1e+03.
        assert_eq!(human_size_with_precision(999_900.0, 3), "1e+03kB");
        assert_eq!(go_format_g(0.00001234, 3), "1.23e-05");
    }

    #[test]
    fn human_size_default_precision_is_four() {
        assert_eq!(human_size(4_263_176.0), "4.263MB");
        assert_eq!(human_size(0.0), "0B");
    }

    #[test]
    fn bytes_size_uses_binary_units() {
        assert_eq!(bytes_size(2_087_575_552.0), "1.944GiB");
        assert_eq!(bytes_size(1024.0), "1KiB");
    }

    #[test]
    fn go_format_g_drops_trailing_zeros() {
        assert_eq!(go_format_g(4.0, 3), "4");
        assert_eq!(go_format_g(4.5, 3), "4.5");
        assert_eq!(go_format_g(100.0, 3), "100");
        assert_eq!(go_format_g(-2.5, 3), "-2.5");
    }

    #[test]
    fn human_duration_matches_go_units() {
        assert_eq!(human_duration(0.5), "Less than a second");
        assert_eq!(human_duration(1.2), "1 second");
        assert_eq!(human_duration(59.0), "59 seconds");
        assert_eq!(human_duration(61.0), "About a minute");
        assert_eq!(human_duration(47.0 * 60.0), "47 minutes");
        assert_eq!(human_duration(3600.0 + 1700.0), "About an hour");
        assert_eq!(human_duration(3.0 * 3600.0), "3 hours");
        assert_eq!(human_duration(2.0 * 86400.0), "2 days");
        assert_eq!(human_duration(15.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }
}
