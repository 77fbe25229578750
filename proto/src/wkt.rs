//! The protobuf well-known types the Hubble API uses, with prost encodings and
//! serde impls that match Go's protojson: timestamps as RFC 3339 in UTC with
//! `Z` and 0, 3, 6 or 9 fractional digits, wrappers as plain values, `Any` as
//! `{"@type": …}`, field masks as comma-joined paths.
//!
//! They live here (not in `prost-types`) because the JSON form must be exact
//! and Rust's orphan rule forbids adding serde impls to foreign types.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use pbjson::private::base64::Engine as _;
use pbjson::private::base64::engine::general_purpose::STANDARD as B64;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

impl Timestamp {
    /// Nanoseconds since the Unix epoch (saturating).
    pub fn as_unix_nanos(&self) -> i128 {
        i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// Builds a timestamp from nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(n: i128) -> Self {
        let seconds = n.div_euclid(1_000_000_000);
        let nanos = n.rem_euclid(1_000_000_000);
        Timestamp {
            seconds: seconds.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            nanos: nanos as i32,
        }
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(std::time::SystemTime::now())
    }

    /// As a chrono UTC date-time, if representable.
    pub fn to_datetime(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.seconds, u32::try_from(self.nanos).ok()?)
    }

    /// RFC 3339 in UTC as Go's protojson prints it.
    pub fn to_rfc3339(&self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => format!("{}.{:09}s", self.seconds, self.nanos),
        }
    }

    /// Parses RFC 3339 (any offset) into a UTC timestamp.
    pub fn parse_rfc3339(s: &str) -> Result<Self, chrono::ParseError> {
        let dt = DateTime::parse_from_rfc3339(s)?;
        Ok(Timestamp {
            seconds: dt.timestamp(),
            nanos: dt.timestamp_subsec_nanos() as i32,
        })
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos() as i32,
            },
            Err(e) => Self::from_unix_nanos(-(e.duration().as_nanos() as i128)),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .map_err(|e| de::Error::custom(format!("invalid timestamp {s:?}: {e}")))
    }
}

macro_rules! wrapper {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $pty:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
        pub struct $name {
            #[prost($pty, tag = "1")]
            pub value: $ty,
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                $name { value }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.value.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name { value: <$ty>::deserialize(d)? })
            }
        }
    };
}

wrapper!(
    /// `google.protobuf.BoolValue`, printed as a plain boolean.
    BoolValue, bool, bool
);
wrapper!(
    /// `google.protobuf.UInt32Value`, printed as a plain number.
    UInt32Value, u32, uint32
);
wrapper!(
    /// `google.protobuf.Int32Value`, printed as a plain number.
    Int32Value, i32, int32
);

/// `google.protobuf.Any`. Printed as `{"@type": url, "value": base64}`: the
/// stack never emits it, and unknown payloads cannot be expanded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl Serialize for Any {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("@type", &self.type_url)?;
        m.serialize_entry("value", &B64.encode(&self.value))?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let type_url = v
            .get("@type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let value = match v.get("value").and_then(|t| t.as_str()) {
            Some(b) => B64.decode(b).map_err(de::Error::custom)?,
            None => Vec::new(),
        };
        Ok(Any { type_url, value })
    }
}

/// `google.protobuf.FieldMask`, printed as comma-joined paths.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

impl Serialize for FieldMask {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.paths.join(","))
    }
}

impl<'de> Deserialize<'de> for FieldMask {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldMask;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a comma-separated field mask")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldMask, E> {
                Ok(FieldMask {
                    paths: v
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            }
        }
        d.deserialize_str(V)
    }
}
