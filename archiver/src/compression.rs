//! The page compression of archive files ([`FileCompression`], the
//! follower's `--compression`): the codecs every notebook reader (DuckDB,
//! pyarrow, polars) and our reader decompress.

use parquet::basic::{Compression, ZstdLevel};

/// The compression of an archive file's pages: codecs every notebook
/// reader (DuckDB, pyarrow, polars) and our reader decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCompression {
    /// zstd at a level: 1..=22, or one of zstd's fast levels -1..=-100
    /// (faster, larger; see [`crate::defaults::COMPRESSION`]).
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// None.
    Uncompressed,
}

impl FileCompression {
    /// The Parquet codec.
    pub fn parquet(self) -> Compression {
        match self {
            FileCompression::Zstd(level) => {
                Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
            }
            FileCompression::Snappy => Compression::SNAPPY,
            FileCompression::Uncompressed => Compression::UNCOMPRESSED,
        }
    }
}

impl std::fmt::Display for FileCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileCompression::Zstd(level) => write!(f, "zstd:{level}"),
            FileCompression::Snappy => f.write_str("snappy"),
            FileCompression::Uncompressed => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for FileCompression {
    type Err = String;

    /// `zstd` (level 1), `zstd:LEVEL` (1–22, or a fast level -1 to -100),
    /// `snappy` or `none`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid compression {s:?}: expected zstd, zstd:LEVEL (1-22, or a fast level -1 to -100), snappy or none"
            )
        };
        match s.split_once(':') {
            None => match s {
                "zstd" => Ok(FileCompression::Zstd(1)),
                "snappy" => Ok(FileCompression::Snappy),
                "none" => Ok(FileCompression::Uncompressed),
                _ => Err(bad()),
            },
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) || (-100..=-1).contains(&l) => {
                    Ok(FileCompression::Zstd(l))
                }
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (s, c) in [
            ("zstd", FileCompression::Zstd(1)),
            ("zstd:1", FileCompression::Zstd(1)),
            ("zstd:19", FileCompression::Zstd(19)),
            ("zstd:-1", FileCompression::Zstd(-1)),
            ("zstd:-100", FileCompression::Zstd(-100)),
            ("snappy", FileCompression::Snappy),
            ("none", FileCompression::Uncompressed),
        ] {
            assert_eq!(s.parse::<FileCompression>().unwrap(), c, "{s}");
            assert_eq!(c.to_string().parse::<FileCompression>().unwrap(), c);
        }
        for bad in [
            "",
            "gzip",
            "zstd:0",
            "zstd:23",
            "zstd:-101",
            "zstd:x",
            "snappy:1",
            "lz4",
        ] {
            let e = bad.parse::<FileCompression>().unwrap_err();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("zstd:LEVEL"),
                "{e}"
            );
        }
    }
}
