//! ISO-8601 day durations (`P<n>D`), the only form GDAP accepts reliably.
//!
//! Microsoft documents `P1D`…`P2Y` but every example sends days, and a year literal is ambiguous
//! across leap years, so the operator's contract is days only: `P1D`…`P730D`.

use std::fmt;
use std::str::FromStr;

/// The longest relationship Microsoft allows, in days.
pub const MAX_RELATIONSHIP_DAYS: u32 = 730;

/// A whole number of days written as `P<n>D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDays(u32);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a day duration: write P<n>D, e.g. P730D")]
pub struct DurationError(pub String);

impl IsoDays {
    /// A duration of `days` days.
    pub const fn new(days: u32) -> Self {
        IsoDays(days)
    }

    /// The number of days.
    pub const fn days(self) -> u32 {
        self.0
    }

    /// As a chrono duration, for date arithmetic.
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.0))
    }
}

impl FromStr for IsoDays {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix('P')
            .and_then(|rest| rest.strip_suffix('D'))
            .filter(|d| !d.is_empty() && d.len() <= 4 && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| DurationError(s.to_string()))?;
        digits
            .parse()
            .map(IsoDays)
            .map_err(|_| DurationError(s.to_string()))
    }
}

impl fmt::Display for IsoDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}D", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_days() {
        for (text, days) in [("P1D", 1), ("P730D", 730), ("P0D", 0), ("P0180D", 180)] {
            let parsed: IsoDays = text.parse().unwrap();
            assert_eq!(parsed.days(), days);
        }
        assert_eq!(IsoDays::new(90).to_string(), "P90D");
    }

    #[test]
    fn refuses_anything_but_days() {
        for text in [
            "", "P", "PD", "730", "P2Y", "PT24H", "P-1D", "p30d", "P 30D", "P99999D",
        ] {
            assert!(text.parse::<IsoDays>().is_err(), "{text} should be refused");
        }
    }
}
