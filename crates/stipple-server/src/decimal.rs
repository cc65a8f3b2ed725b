//! The one spelling of an id in URLs and file names.

/// Parses a positive integer written as `Display` writes it: ASCII digits, no sign, no
/// leading zero, no white space. So one id has one spelling, and nothing else (a path, a
/// negative number, `007`) is ever taken for one.
pub(crate) fn parse_positive(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::parse_positive;

    #[test]
    fn only_canonical_positive_decimals_parse() {
        assert_eq!(parse_positive("1"), Some(1));
        assert_eq!(parse_positive("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "0", "007", "-1", "+1", " 1", "1 ", "1.png", "../1", "18446744073709551616", "1e3", "١"] {
            assert_eq!(parse_positive(bad), None, "{bad:?} was accepted");
        }
    }
}
