//! Candle intervals: the six the exchange serves, their names and their buckets.

use serde::{Deserialize, Serialize};

/// A candle interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 6] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::H4,
        Interval::D1,
    ];

    /// The name used in the API and the stores (`1m`, ..., `1d`).
    pub fn name(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }

    /// The interval named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == s)
    }

    /// Its length in minutes.
    pub fn minutes(self) -> u64 {
        match self {
            Interval::M1 => 1,
            Interval::M5 => 5,
            Interval::M15 => 15,
            Interval::H1 => 60,
            Interval::H4 => 240,
            Interval::D1 => 1440,
        }
    }

    /// Its length in milliseconds.
    pub fn millis(self) -> u64 {
        self.minutes() * 60_000
    }

    /// The start (milliseconds since the epoch, UTC) of the bucket holding `time_ns`.
    pub fn bucket(self, time_ns: u64) -> u64 {
        let ms = time_ns / 1_000_000;
        ms - ms % self.millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_interval_boundaries() {
        let t = 1_700_000_123_456_000_000; // 2023-11-14T22:15:23.456Z
        assert_eq!(Interval::M1.bucket(t), 1_700_000_100_000);
        assert_eq!(Interval::M5.bucket(t), 1_700_000_100_000); // 22:15 starts a 5m bucket
        assert_eq!(Interval::M15.bucket(t), 1_700_000_100_000);
        assert_eq!(Interval::H4.bucket(t), 1_699_992_000_000); // 20:00
        assert_eq!(Interval::H1.bucket(t), 1_699_999_200_000);
        assert_eq!(Interval::D1.bucket(t), 1_699_920_000_000);
        for i in Interval::ALL {
            assert_eq!(Interval::parse(i.name()), Some(i));
        }
        assert_eq!(Interval::parse("2m"), None);
    }
}
