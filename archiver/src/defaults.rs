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

/// Page compression: zstd level 1, zstd's fastest standard level. On the
/// synthetic mix it writes 8–15 % more rows/s than level 3 (zstd's
/// default) for the same size on disk (77 bytes a flow either way): flows
/// repeat so much that the extra search of level 3 finds nothing more. Any
/// level reads alike.
pub const COMPRESSION: crate::compression::FileCompression =
    crate::compression::FileCompression::Zstd(1);

/// Whether the writer decodes each received flow with prost before
/// archiving its bytes (`--verify-flows`; see [`crate::encoded`]). Off:
/// the scan checks every field a column reads, the sources (our exporter
/// and relay, Cilium agents) encode valid protobuf, and the full decode
/// would cost about a third of the writer's rows per CPU-second.
pub const VERIFY_FLOWS: bool = false;
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

/// Initial capacity of the buffer a Parquet file is written into: 1 MiB
/// spares the first dozen reallocations of a typical file without holding
/// much for a small one (a file grows up to [`FILE_BYTES`]).
pub const FILE_BUFFER_CAPACITY: usize = 1 << 20;

/// S3 requests are retried this many times (connection failures, 5xx,
/// throttling): enough to ride out a store's brief hiccup, few enough that
/// a dead endpoint fails the write (and the follower retries) within
/// [`S3_RETRY_TIMEOUT`].
pub const S3_MAX_RETRIES: usize = 4;

/// No S3 request, retries included, takes longer than this: a stuck store
/// must surface as an error, not hang the follower.
pub const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// Connecting to the S3 endpoint: an unreachable endpoint fails fast, as a
/// dial to the Observer API does ([`DIAL_TIMEOUT`]).
pub const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One S3 request: long enough to upload a full Parquet file
/// ([`FILE_BYTES`]) over a slow link.
pub const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the follower, on reconnecting, waits for the source's oldest
/// flow (a `first: 1` GetFlows) to tell whether flows since the archive's
/// newest were lost (then a gap is recorded): the ring is in memory, so a
/// healthy server answers at once; a slow one only costs the gap record,
/// never the archive.
pub const OLDEST_FLOW_TIMEOUT: Duration = Duration::from_secs(10);
