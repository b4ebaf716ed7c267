//! How fast recorded gaps are replayed.

use std::time::Duration;

/// The slowest and fastest speeds accepted by [`Timing::scaled`].
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.1..=10.0;

/// How recorded gaps (between a request and its answer, and between the messages that
/// follow it) are replayed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Timing {
    /// `None`: as fast as possible (no waiting). `Some(speed)`: recorded gaps divided by
    /// `speed` (1.0 as recorded, 2.0 twice as fast, 0.5 half as fast).
    pub speed: Option<f64>,
    /// The longest single wait, whatever was recorded.
    pub max_gap: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Self::fast()
    }
}

impl Timing {
    /// As fast as possible: every answer goes out as soon as its request arrives.
    pub fn fast() -> Self {
        Self {
            speed: None,
            max_gap: None,
        }
    }

    /// The recorded gaps, unchanged.
    pub fn recorded() -> Self {
        Self {
            speed: Some(1.0),
            max_gap: None,
        }
    }

    /// The recorded gaps divided by `speed`, which must lie in [`SPEED_RANGE`]; `None`
    /// otherwise.
    pub fn scaled(speed: f64) -> Option<Self> {
        SPEED_RANGE.contains(&speed).then_some(Self {
            speed: Some(speed),
            max_gap: None,
        })
    }

    /// Caps every wait at `max_gap`.
    pub fn with_max_gap(mut self, max_gap: Option<Duration>) -> Self {
        self.max_gap = max_gap;
        self
    }

    /// How long to wait for a recorded gap of `gap_ns` nanoseconds.
    pub fn delay(&self, gap_ns: u64) -> Duration {
        let Some(speed) = self.speed else {
            return Duration::ZERO;
        };
        let wait = Duration::from_nanos(gap_ns).div_f64(speed.max(f64::MIN_POSITIVE));
        match self.max_gap {
            Some(cap) => wait.min(cap),
            None => wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_caps() {
        assert_eq!(Timing::fast().delay(5_000_000_000), Duration::ZERO);
        assert_eq!(Timing::recorded().delay(1_000), Duration::from_nanos(1_000));
        let t = Timing::scaled(2.0).unwrap();
        assert_eq!(t.delay(1_000_000), Duration::from_micros(500));
        let t = Timing::scaled(0.5)
            .unwrap()
            .with_max_gap(Some(Duration::from_millis(1)));
        assert_eq!(t.delay(1_000_000), Duration::from_millis(1));
        assert!(Timing::scaled(0.05).is_none());
        assert!(Timing::scaled(11.0).is_none());
        assert!(Timing::scaled(f64::NAN).is_none());
    }
}
