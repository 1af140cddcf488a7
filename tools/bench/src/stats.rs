//! Percentiles over samples, the median and spread over runs, and the deterministic sequence
//! generated workloads draw from.

use std::time::Duration;

use serde::Serialize;

/// p50, p99 and max of one run, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Percentiles {
    pub(crate) fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Some(Self { p50: at(0.50), p99: at(0.99), max: ms[ms.len() - 1] })
    }
}

/// The median of each figure over several runs, with the smallest and largest run's p99.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) median: Percentiles,
    pub(crate) p99_min: f64,
    pub(crate) p99_max: f64,
    pub(crate) runs: usize,
}

impl Summary {
    pub(crate) fn of(runs: &[Percentiles]) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        let median = |pick: fn(&Percentiles) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let p99s = runs.iter().map(|r| r.p99);
        Some(Self {
            median: Percentiles { p50: median(|r| r.p50), p99: median(|r| r.p99), max: median(|r| r.max) },
            p99_min: p99s.clone().fold(f64::INFINITY, f64::min),
            p99_max: p99s.fold(0.0, f64::max),
            runs: runs.len(),
        })
    }
}

/// A deterministic pseudo-random sequence (xorshift): every run generates the same workload.
pub(crate) struct Sequence(pub(crate) u64);

impl Sequence {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// One of `items`.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    /// A common CJK character (the 3,500 most used sit in U+4E00..U+9FA5; this draws from it).
    pub(crate) fn cjk(&mut self) -> char {
        char::from_u32(0x4E00 + (self.next() % 0x51A5) as u32).unwrap_or('中')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples).unwrap();
        assert_eq!((p.p50.round(), p.p99.round(), p.max), (51.0, 99.0, 100.0));
        assert!(Percentiles::of(&[]).is_none());
    }

    #[test]
    fn the_summary_is_the_median_run() {
        let run = |p99| Percentiles { p50: 1.0, p99, max: p99 };
        let summary = Summary::of(&[run(3.0), run(1.0), run(2.0)]).unwrap();
        assert_eq!((summary.median.p99, summary.p99_min, summary.p99_max), (2.0, 1.0, 3.0));
    }
}
