//! Whisper's aggregation methods: how a lower-precision archive summarises the higher-precision
//! points of one of its intervals (whisper.py's `aggregate`).

use std::fmt;
use std::str::FromStr;

use super::WhisperError;

/// The `aggregationMethod` stored in a whisper header, with whisper's type numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AggregationMethod {
    /// Mean of the known values (type 1, whisper's default).
    #[default]
    Average,
    /// Sum of the known values (type 2).
    Sum,
    /// The last known value in time order (type 3).
    Last,
    /// Largest known value (type 4).
    Max,
    /// Smallest known value (type 5).
    Min,
    /// Mean over every slot of the interval, unknown slots counting as 0 (type 6).
    AvgZero,
    /// The known value largest in absolute value, sign kept (type 7).
    AbsMax,
    /// The known value smallest in absolute value, sign kept (type 8).
    AbsMin,
}

impl AggregationMethod {
    /// Every method, in type-number order.
    pub const ALL: [AggregationMethod; 8] = [
        AggregationMethod::Average,
        AggregationMethod::Sum,
        AggregationMethod::Last,
        AggregationMethod::Max,
        AggregationMethod::Min,
        AggregationMethod::AvgZero,
        AggregationMethod::AbsMax,
        AggregationMethod::AbsMin,
    ];

    /// The type number written in the header (1..=8).
    pub fn type_number(self) -> u32 {
        match self {
            AggregationMethod::Average => 1,
            AggregationMethod::Sum => 2,
            AggregationMethod::Last => 3,
            AggregationMethod::Max => 4,
            AggregationMethod::Min => 5,
            AggregationMethod::AvgZero => 6,
            AggregationMethod::AbsMax => 7,
            AggregationMethod::AbsMin => 8,
        }
    }

    /// The method for a header type number, `None` for numbers whisper does not know.
    pub fn from_type_number(n: u32) -> Option<Self> {
        Self::ALL.get((n as usize).wrapping_sub(1)).copied()
    }

    /// whisper's name for the method (`average`, `sum`, `last`, `max`, `min`, `avg_zero`,
    /// `absmax`, `absmin`).
    pub fn name(self) -> &'static str {
        match self {
            AggregationMethod::Average => "average",
            AggregationMethod::Sum => "sum",
            AggregationMethod::Last => "last",
            AggregationMethod::Max => "max",
            AggregationMethod::Min => "min",
            AggregationMethod::AvgZero => "avg_zero",
            AggregationMethod::AbsMax => "absmax",
            AggregationMethod::AbsMin => "absmin",
        }
    }

    /// Aggregates one interval as whisper.py's `aggregate(method, knownValues, neighborValues)`.
    ///
    /// `neighbors` holds every slot of the interval in time order, `None` where unknown; the
    /// caller guarantees at least one known value. Sums run left to right as Python's `sum`
    /// does, so results match whisper.py to the last bit.
    pub fn aggregate(self, neighbors: &[Option<f64>]) -> f64 {
        let mut known = neighbors.iter().flatten().copied();
        match self {
            AggregationMethod::Average => {
                let (sum, n) = known.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                sum / n as f64
            }
            AggregationMethod::Sum => known.fold(0.0, |s, v| s + v),
            AggregationMethod::Last => known.last().unwrap_or(f64::NAN),
            // Python's max/min keep the first of equal elements and compare with `>`/`<`.
            AggregationMethod::Max => {
                let first = known.next().unwrap_or(f64::NAN);
                known.fold(first, |m, v| if v > m { v } else { m })
            }
            AggregationMethod::Min => {
                let first = known.next().unwrap_or(f64::NAN);
                known.fold(first, |m, v| if v < m { v } else { m })
            }
            AggregationMethod::AvgZero => {
                let sum = neighbors.iter().fold(0.0, |s, v| s + v.unwrap_or(0.0));
                sum / neighbors.len() as f64
            }
            AggregationMethod::AbsMax => {
                let first = known.next().unwrap_or(f64::NAN);
                known.fold(first, |m, v| if v.abs() > m.abs() { v } else { m })
            }
            AggregationMethod::AbsMin => {
                let first = known.next().unwrap_or(f64::NAN);
                known.fold(first, |m, v| if v.abs() < m.abs() { v } else { m })
            }
        }
    }
}

impl fmt::Display for AggregationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AggregationMethod {
    type Err = WhisperError;

    /// Parses whisper's method names; the error reads as whisper's
    /// `Unrecognized aggregation method: NAME`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                WhisperError::InvalidAggregationMethod(format!(
                    "Unrecognized aggregation method: {s}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for m in AggregationMethod::ALL {
            assert_eq!(AggregationMethod::from_type_number(m.type_number()), Some(m));
            assert_eq!(m.name().parse::<AggregationMethod>().unwrap(), m);
        }
        assert_eq!(AggregationMethod::from_type_number(0), None);
        assert_eq!(AggregationMethod::from_type_number(9), None);
        assert!("median".parse::<AggregationMethod>().is_err());
    }

    #[test]
    fn aggregates_follow_whisper() {
        let v = [Some(1.0), None, Some(-3.0), Some(2.0)];
        assert_eq!(AggregationMethod::Average.aggregate(&v), 0.0);
        assert_eq!(AggregationMethod::Sum.aggregate(&v), 0.0);
        assert_eq!(AggregationMethod::Last.aggregate(&v), 2.0);
        assert_eq!(AggregationMethod::Max.aggregate(&v), 2.0);
        assert_eq!(AggregationMethod::Min.aggregate(&v), -3.0);
        assert_eq!(AggregationMethod::AvgZero.aggregate(&v), 0.0);
        assert_eq!(AggregationMethod::AbsMax.aggregate(&v), -3.0);
        assert_eq!(AggregationMethod::AbsMin.aggregate(&v), 1.0);
        // absmax keeps the first of equal magnitudes, as Python's max(key=abs) does.
        assert_eq!(AggregationMethod::AbsMax.aggregate(&[Some(2.0), Some(-2.0)]), 2.0);
        assert_eq!(AggregationMethod::AvgZero.aggregate(&[Some(4.0), None]), 2.0);
    }
}
