//! The verifier's time as an operator writes it (`--now`): RFC 3339
//! (`2025-06-19T11:32:27Z`, a fraction or a `+HH:MM` offset allowed) or Unix
//! seconds (`1750332747`). Only real calendar dates are accepted:
//! `2026-02-30` is an error, never quietly March 2nd.

/// Why a time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is neither an RFC 3339 date-time with a real calendar date (2025-06-19T11:32:27Z) nor Unix seconds (1750332747)")]
pub struct TimeError {
    /// What was given.
    pub input: String,
}

/// Parses `--now`: RFC 3339 or non-negative Unix seconds (at most 11 digits,
/// i.e. before the year 5138).
pub fn parse_now(s: &str) -> Result<i64, TimeError> {
    let err = || TimeError {
        input: s.to_owned(),
    };
    let s = s.trim();
    if !s.is_empty() && s.len() <= 11 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| err());
    }
    crate::x509::parse_rfc3339(s).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_unix_seconds() {
        // 1750332747 = 2025-06-19T11:32:27Z (shared/fixtures/SOURCES.md).
        assert_eq!(parse_now("2025-06-19T11:32:27Z"), Ok(1_750_332_747));
        assert_eq!(parse_now("1750332747"), Ok(1_750_332_747));
        assert_eq!(parse_now("0"), Ok(0));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-02-30",
            "-5",
            "",
            "17503327471234",
            "1750332747s",
            "yesterday",
        ] {
            assert!(parse_now(bad).is_err(), "{bad}");
        }
        assert!(parse_now("2026-02-30T00:00:00Z")
            .unwrap_err()
            .to_string()
            .contains("real calendar date"));
    }
}
