//! Timestamps as they appear in messages and documents: Unix seconds shown
//! as RFC 3339 UTC (`2026-11-24T13:23:15Z`). One formatter for the guest's
//! health document and the verifier's denials.

/// Formats Unix seconds as RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`
/// (proleptic Gregorian; negative seconds are before 1970).
pub fn rfc3339(secs: i64) -> String {
    // Civil-from-days (H. Hinnant), valid for the whole i64 day range we use.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_750_332_747), "2025-06-19T11:32:27Z");
        assert_eq!(rfc3339(1_795_999_999), "2026-11-30T00:53:19Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
