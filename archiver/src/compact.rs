//! `flow-archiver compact`: merges the small files of each partition into
//! one, atomically: the merged file is written (atomically) first, then the
//! inputs are deleted. A crash in between leaves both, which a reader would
//! count twice, so the merged file's name records its inputs' names
//! (`compact-<first input>`), and the next `compact` removes inputs that a
//! merged file already covers.

use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;

use crate::defaults;
use crate::schema;
use crate::storage::Storage;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Partitions rewritten.
    pub partitions: u64,
    /// Input files merged (and removed).
    pub files_merged: u64,
    /// Rows rewritten.
    pub rows: u64,
}

const COVERS_KEY: &str = "flow_archive.compacted_from";

/// Merges files smaller than `small_bytes` in every partition with at
/// least two of them.
pub fn compact(storage: &Arc<dyn Storage>, small_bytes: u64) -> anyhow::Result<CompactStats> {
    let mut stats = CompactStats::default();
    let files: Vec<String> = storage
        .list("")?
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    let mut by_partition: std::collections::BTreeMap<String, Vec<(String, Vec<u8>)>> =
        Default::default();
    for f in files {
        let part = f
            .rsplit_once('/')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default();
        let Some(data) = storage.get(&f)? else {
            continue;
        };
        by_partition.entry(part).or_default().push((f, data));
    }
    for (part, files) in by_partition {
        // Inputs already covered by an earlier merge that crashed before
        // deleting them.
        let mut covered = std::collections::HashSet::new();
        for (_, data) in &files {
            let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data.clone()))?;
            if let Some(kv) = b.metadata().file_metadata().key_value_metadata() {
                for k in kv.iter().filter(|k| k.key == COVERS_KEY) {
                    covered.extend(k.value.iter().flat_map(|v| v.split(',').map(str::to_owned)));
                }
            }
        }
        for (name, _) in files.iter().filter(|(n, _)| covered.contains(n)) {
            storage.delete(name)?;
        }
        let small: Vec<_> = files
            .into_iter()
            .filter(|(n, d)| !covered.contains(n) && (d.len() as u64) < small_bytes)
            .collect();
        if small.len() < 2 {
            continue;
        }
        let names: Vec<String> = small.iter().map(|(n, _)| n.clone()).collect();
        let props = crate::writer::file_properties(defaults::COMPRESSION, defaults::ROW_GROUP_ROWS)
            .set_key_value_metadata(Some(vec![
                KeyValue::new(
                    schema::SCHEMA_VERSION_KEY.to_owned(),
                    schema::SCHEMA_VERSION.to_owned(),
                ),
                KeyValue::new(COVERS_KEY.to_owned(), names.join(",")),
            ]))
            .build();
        let mut w = ArrowWriter::try_new(Vec::new(), schema::schema(), Some(props))?;
        for (_, data) in &small {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data.clone()))?
                    .build()?;
            for batch in reader {
                // Files of an older schema version are rebuilt from flow_pb.
                let batch =
                    schema::upgrade(batch?).map_err(|e| anyhow::anyhow!("compact {part}: {e}"))?;
                stats.rows += batch.num_rows() as u64;
                w.write(&batch)?;
            }
        }
        let out = w.into_inner()?;
        let first = names[0]
            .rsplit_once('/')
            .map(|(_, n)| n)
            .unwrap_or(&names[0]);
        let target = format!("{part}/compact-{first}");
        storage.put(&target, &out)?;
        for n in &names {
            storage.delete(n)?;
        }
        stats.partitions += 1;
        stats.files_merged += names.len() as u64;
        tracing::info!(partition = %part, files = names.len(), into = %target, "compacted");
    }
    Ok(stats)
}
