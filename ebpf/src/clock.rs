//! The clock the kernel programs stamp events with: `bpf_ktime_get_boot_ns()`
//! is `CLOCK_BOOTTIME` (it keeps counting through suspend, unlike
//! `CLOCK_MONOTONIC`). Userspace that turns event times into wall time (the
//! exporter, `datapath monitor`) reads it here, next to the ABI that carries
//! it, and hands the parser the offset as a value.

/// `CLOCK_BOOTTIME` now, in nanoseconds: the timebase of
/// [`crate::EventHdr::ktime_ns`].
pub fn boot_time_ns() -> std::io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and clock_gettime only
    // writes it; CLOCK_BOOTTIME exists on every kernel this project supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn boot_time_advances() {
        let a = super::boot_time_ns().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(super::boot_time_ns().unwrap() > a);
    }
}
