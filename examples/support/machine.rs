//! What the benchmarks report of the machine beside their figures: how
//! loaded it was, and whether other builds were competing for its cores.

/// The one-minute load average (NaN where `/proc` has none).
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Compilers running on the machine (other developers' builds), which
/// steal CPU from a measurement.
pub fn compilers_running() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|c| matches!(c.trim(), "rustc" | "cc1" | "cc1plus" | "ld" | "rust-lld"))
        .count()
}
