//! Every size, interval and default of the archiver, with the reason for it.

use std::time::Duration;

/// Rows per Parquet row group: large enough for good compression and
/// statistics, small enough that time pruning skips real work.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Rows after which a file is closed (≈ 100–150 MB of flows in memory,
/// ≈ 20–40 MB on disk).
pub const FILE_ROWS: u64 = 500_000;

/// Approximate compressed bytes after which a file is closed.
pub const FILE_BYTES: u64 = 64 << 20;

/// Age after which an open file is closed, so recent flows become visible
/// and a crash loses at most this much (which the restart re-fetches while
/// the source still holds it).
pub const FILE_AGE: Duration = Duration::from_secs(60);

/// zstd level: 3 is zstd's default speed/ratio balance.
pub const ZSTD_LEVEL: i32 = 3;

/// Rows encoded into Parquet at a time.
pub const BATCH_ROWS: usize = 8192;

/// How often file age and metrics are checked.
pub const TICK: Duration = Duration::from_secs(1);

/// Reconnect backoff bounds (as Hubble's relay: 1 s doubling).
pub const RECONNECT_MIN: Duration = Duration::from_secs(1);
/// Upper bound of the reconnect backoff.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Dial timeout (the Hubble CLI's default).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Default source: Hubble relay's (and `just demo`'s) address.
pub const SERVER: &str = "localhost:4245";

/// Files in a partition smaller than this are merged by `compact`.
pub const COMPACT_SMALL_BYTES: u64 = 16 << 20;
