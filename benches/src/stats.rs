//! Latency percentiles.

use std::fmt::Write as _;

/// Latency percentiles of one run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest request.
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarizes latencies given in nanoseconds (sorts them in place). Nearest-rank
    /// percentiles; all zero when there are none.
    pub fn from_nanos(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = (p * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Self {
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: at(1.0),
        }
    }

    /// The percentiles as JSON members (`"p50_us":…,"p90_us":…,…`), without braces.
    pub fn json_members(&self) -> String {
        let mut out = String::new();
        write!(
            out,
            r#""p50_us":{:.1},"p90_us":{:.1},"p99_us":{:.1},"max_us":{:.1}"#,
            self.p50_us, self.p90_us, self.p99_us, self.max_us
        )
        .expect("writing to a String cannot fail");
        out
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).rev().map(|n| n * 1000).collect();
        let s = LatencySummary::from_nanos(&mut samples);
        assert_eq!(
            (s.p50_us, s.p90_us, s.p99_us, s.max_us),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(LatencySummary::from_nanos(&mut [7000]).p50_us, 7.0);
        assert_eq!(LatencySummary::from_nanos(&mut []).max_us, 0.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median([]), 0.0);
    }
}
