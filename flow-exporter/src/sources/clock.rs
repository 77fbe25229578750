//! The boot clock: events carry `bpf_ktime_get_boot_ns()` (`CLOCK_BOOTTIME`);
//! flows carry wall time. The exporter reads both clocks here
//! (`CLOCK_BOOTTIME` through [`ebpf::clock`]) and hands the parser the offset
//! as a value ([`ClockOffset`]); the parser reads no clock.

use std::time::SystemTime;

use flow_parser::ClockOffset;

/// `CLOCK_BOOTTIME` in nanoseconds: what `bpf_ktime_get_boot_ns()` returns,
/// or 0 if the clock cannot be read.
pub fn boot_time_ns() -> u64 {
    read_boot_time_ns().unwrap_or(0)
}

/// `CLOCK_BOOTTIME` in nanoseconds, or the OS error.
fn read_boot_time_ns() -> std::io::Result<u64> {
    ebpf::clock::boot_time_ns()
}

/// The boot-to-wall offset from a reading of both clocks now.
pub fn measure_offset() -> std::io::Result<ClockOffset> {
    let boot_ns = read_boot_time_ns()?;
    Ok(ClockOffset::from_pair(SystemTime::now(), boot_ns))
}

#[cfg(test)]
mod tests {
    use flow_parser::EventClock as _;
    use proto::wkt::Timestamp;

    use super::*;

    #[test]
    fn a_measured_offset_turns_boot_time_into_a_recent_date() {
        let offset = measure_offset().unwrap();
        let t = offset.wall_time(boot_time_ns());
        assert!(
            t.seconds > 1_600_000_000,
            "boot offset makes it a recent date: {t:?}"
        );
        let now = Timestamp::from(SystemTime::now());
        assert!((now.seconds - t.seconds).abs() <= 1, "{t:?} vs {now:?}");
    }

    #[test]
    fn boot_time_advances() {
        let a = boot_time_ns();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(boot_time_ns() > a);
    }
}
