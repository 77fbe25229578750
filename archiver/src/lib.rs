//! The flow archive: `flow-archiver` follows a Hubble Observer API (relay or
//! exporter) into hive-partitioned, zstd-compressed Parquet
//! (`dt=YYYY-MM-DD/hour=HH/*.parquet`, schema in [`schema`]) that DuckDB,
//! pandas/pyarrow and polars open directly; this library also reads the
//! archive back with Hubble's filter semantics ([`read`]), for
//! `hubble observe --archive`.
//!
//! The archive lives in a local directory or in an object store
//! (`s3://bucket/prefix`: Amazon S3 or a compatible store, through the
//! `object_store` crate, [`object`]); [`location::open`] takes either
//! location, and the writer, compaction and the reader ([`read::Archive::open`])
//! work the same on both. Files appear atomically ([`storage`]: the trait and
//! the local directory; [`object`] depends on it, [`location`] on both); the
//! resume state and recorded gaps live under `_archive/` ([`writer`]).
//! Depends on `proto` and `flow-filter`, never on the datapath.

pub mod columnar;
pub mod compact;
pub mod compression;
pub mod defaults;
pub mod encoded;
pub mod follow;
mod history;
pub mod location;
pub mod metrics;
pub mod object;
pub mod read;
pub mod schema;
pub mod storage;
pub mod writer;
