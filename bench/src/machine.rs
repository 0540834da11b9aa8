//! What the figures were measured on, and this process's memory.

use std::time::Duration;

/// The machine a run measured.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started.
    pub load_at_start: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_gib = meminfo_kib("MemTotal").map_or(0.0, |k| k as f64 / (1024.0 * 1024.0));
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            load_at_start: load_average(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    status_field(&text, key)
}

fn status_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// This process's peak resident set size (VmHWM), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    status_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM")
}

/// This process's resident set size now (VmRSS), KiB.
pub fn rss_kib() -> Option<u64> {
    status_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS")
}

/// Resets the peak resident set size to the current one (Linux ≥ 4.0), so
/// that a later [`peak_rss_kib`] covers only what follows.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time this process has used (user + system), from
/// `/proc/self/stat`; `None` where that is not available.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in USER_HZ, 100 per second on every platform it
    // supports.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU time (user + system) of the child processes this process has
/// waited for, from `/proc/self/stat`; `None` where that is not available.
pub fn children_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some(Duration::from_millis((cutime + cstime) * 10))
}

/// Seconds with millisecond precision, for tables.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// A rate with a readable unit: `12.3 M/s`, `456 k/s`.
pub fn per_second(count: u64, d: Duration) -> String {
    let rate = count as f64 / d.as_secs_f64().max(1e-9);
    if rate >= 1e6 {
        format!("{:.2} M/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0} k/s", rate / 1e3)
    } else {
        format!("{rate:.0} /s")
    }
}

/// KiB as MiB, for tables.
pub fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let text = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(status_field(text, "VmHWM"), Some(123_456));
        assert_eq!(status_field(text, "VmRSS"), Some(1000));
        assert_eq!(status_field(text, "VmSwap"), None);
    }

    #[test]
    fn rates_pick_a_unit() {
        assert_eq!(per_second(2_500_000, Duration::from_secs(1)), "2.50 M/s");
        assert_eq!(per_second(300_000, Duration::from_secs(1)), "300 k/s");
    }
}
