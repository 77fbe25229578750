//! `-o json`/`jsonpb`: one protojson line per response (proto field names,
//! enum names, RFC 3339 times, Go's HTML escaping), appended to a reused
//! buffer by `proto::json::append_hubble_json` (the bytes of
//! `proto::json::to_hubble_json`, without a new string per line).

use std::io::{self, Write};

use serde::Serialize;

use super::Printer;

impl<W: Write, E: Write> Printer<W, E> {
    pub(crate) fn json_line<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        // Into the scratch buffer first: a value that cannot be printed
        // (pbjson refuses an unknown enum number) leaves no partial line.
        self.json.clear();
        proto::json::append_hubble_json(&mut self.json, v).map_err(io::Error::other)?;
        self.json.push(b'\n');
        self.out.write_all(&self.json)
    }
}
