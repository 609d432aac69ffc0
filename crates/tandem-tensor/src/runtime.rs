//! Process-wide settings that make CPU training fast: call [`tune_cpu_runtime`] once at the
//! start of `main`, before any tensor work.
//!
//! A training step allocates and frees tensors of several megabytes many times (candle
//! allocates a fresh buffer for every op and every gradient accumulation). With glibc's
//! default malloc, blocks that large are `mmap`ed and `munmap`ed each time, or the heap top is
//! trimmed and grown again: every step then pays page faults, zeroing of fresh pages and, with
//! several threads, TLB shoot-downs. Raising glibc's mmap threshold to its maximum (32 MiB)
//! and its trim threshold to 256 MiB keeps those blocks in the heap for reuse. On the
//! TCDCN step at batch 256 on 2 cores this is worth about +45 % samples/s, for ~10 MB more
//! resident memory (see docs/performance.md). The allocator stays glibc's own.
use std::sync::OnceLock;

/// glibc's largest mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// The trim threshold set by [`tune_allocator`].
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Runs candle's element-wise ops on the calling thread and tunes the allocator; see
/// [`single_thread_candle_ops`] and [`tune_allocator`]. Idempotent.
pub fn tune_cpu_runtime() {
    single_thread_candle_ops();
    tune_allocator();
}

/// Sets `CANDLE_NUM_THREADS=1` unless the variable is already set: candle's element-wise ops
/// then run on the calling thread. On a few cores candle's spin-waiting pool costs more than it
/// saves (~30 % of a TCDCN step on 2 cores); tandem's kernels and the GEMMs keep using rayon's
/// pool. Must run before the first candle op reads the variable.
pub fn single_thread_candle_ops() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Tunes glibc's malloc for large, short-lived tensors (see the module docs). Returns whether
/// the settings were applied: not on other platforms or C libraries, not when the environment
/// already configures malloc (`GLIBC_TUNABLES` or `MALLOC_*_`), and not when
/// `TANDEM_MALLOC_TUNING=0`. Only the first call does anything.
pub fn tune_allocator() -> bool {
    static APPLIED: OnceLock<bool> = OnceLock::new();
    *APPLIED.get_or_init(|| wanted() && apply())
}

fn wanted() -> bool {
    if std::env::var("TANDEM_MALLOC_TUNING").is_ok_and(|v| v == "0") {
        return false;
    }
    !std::env::vars_os().any(|(k, _)| {
        let k = k.to_string_lossy();
        k == "GLIBC_TUNABLES" || (k.starts_with("MALLOC_") && k.ends_with('_'))
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only changes malloc's parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_is_idempotent_and_allocation_still_works() {
        let first = tune_allocator();
        assert_eq!(tune_allocator(), first);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if std::env::var_os("GLIBC_TUNABLES").is_none() && wanted() {
            assert!(first, "mallopt refused the settings");
        }
        let v = vec![1f32; 10 << 20];
        assert_eq!(v.iter().sum::<f32>(), (10 << 20) as f32);
    }
}
