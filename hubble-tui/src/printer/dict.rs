//! `-o dict`: one `KEY: VALUE` block per flow, separated by `------------`.

use std::io::{self, Write};

use proto::flow::Flow;

use super::{Printer, flow_type};
use crate::gotime::fmt_timestamp;

impl<W: Write, E: Write> Printer<W, E> {
    pub(crate) fn dict_flow(&mut self, f: &Flow) -> io::Result<()> {
        let (src, dst) = self.host_names(f);
        let time = fmt_timestamp(self.opts.time_format, f.time.as_ref());
        let verdict = self.verdict(f);
        let summary = self.summary(f);
        let ty = flow_type(f);
        self.buf.clear();
        if self.line != 0 {
            self.buf.push_str("------------\n");
        }
        self.buf.push_str("  TIMESTAMP: ");
        self.buf.push_str(&time);
        self.buf.push('\n');
        if self.opts.node_name {
            self.buf.push_str("       NODE: ");
            self.buf.push_str(&f.node_name);
            self.buf.push('\n');
        }
        for (k, v) in [
            ("     SOURCE: ", &src),
            ("DESTINATION: ", &dst),
            ("       TYPE: ", &ty),
            ("    VERDICT: ", &verdict),
            ("    SUMMARY: ", &summary),
        ] {
            self.buf.push_str(k);
            self.buf.push_str(v);
            self.buf.push('\n');
        }
        self.emit()
    }
}
