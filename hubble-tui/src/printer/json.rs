//! `-o json`/`jsonpb`: one protojson line per response (proto field names,
//! enum names, RFC 3339 times, Go's HTML escaping), through
//! `proto::json::to_hubble_json`.

use std::io::{self, Write};

use serde::Serialize;

use super::Printer;

impl<W: Write, E: Write> Printer<W, E> {
    pub(crate) fn json_line<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        let line = proto::json::to_hubble_json(v).map_err(io::Error::other)?;
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }
}
