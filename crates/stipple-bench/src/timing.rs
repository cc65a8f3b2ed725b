//! Wall-clock timing, medians and the process's memory.

use std::time::Instant;

/// `warmup` untimed calls of `warm`, then `runs` timed calls of `f`; seconds per call.
pub(crate) fn timed<E>(
    runs: usize,
    warmup: usize,
    mut warm: impl FnMut() -> Result<(), E>,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Vec<f64>, E> {
    for _ in 0..warmup {
        warm()?;
    }
    (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f()?;
            Ok(t0.elapsed().as_secs_f64())
        })
        .collect()
}

/// The median of `v` (the mean of the two middle values for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// `key` of `/proc/self/status` (`VmHWM`: peak resident set, `VmRSS`: current) in MiB; NaN
/// where the file or the key is missing.
pub fn rss_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn timed_runs_warm_up_then_times_each_run() {
        let (mut warm, mut runs) = (0, 0);
        let count = |n: &mut i32| {
            *n += 1;
            Ok(())
        };
        let times = timed::<()>(3, 2, || count(&mut warm), || count(&mut runs)).unwrap();
        assert_eq!((warm, runs, times.len()), (2, 3, 3));
        assert!(times.iter().all(|t| *t >= 0.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_resident_set_is_at_least_the_current_one() {
        let (now, peak) = (rss_mib("VmRSS"), rss_mib("VmHWM"));
        assert!(now > 0.0 && peak >= now, "VmRSS {now}, VmHWM {peak}");
        assert!(rss_mib("NoSuchKey").is_nan());
    }
}
