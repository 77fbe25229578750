//! `-o table`: tab-aligned TIMESTAMP, [NODE,] SOURCE, DESTINATION, TYPE,
//! VERDICT, SUMMARY columns, laid out when the stream ends (so it cannot be
//! used with `--follow`).

use std::io::Write;

use proto::flow::Flow;

use super::{Printer, escape_terminal, flow_type};
use crate::gotime::fmt_timestamp;

impl<W: Write, E: Write> Printer<W, E> {
    pub(crate) fn table_header(&mut self) {
        if self.line == 0 {
            let node = if self.opts.node_name { "NODE\t" } else { "" };
            self.tab.write_str(&format!(
                "TIMESTAMP\t{node}SOURCE\tDESTINATION\tTYPE\tVERDICT\tSUMMARY\n"
            ));
        }
    }

    pub(crate) fn table_flow(&mut self, f: &Flow) {
        self.table_header();
        let (src, dst) = self.host_names(f);
        let time = fmt_timestamp(self.opts.time_format, f.time.as_ref());
        let node = if self.opts.node_name {
            format!("{}\t", f.node_name)
        } else {
            String::new()
        };
        let row = format!(
            "{time}\t{node}{src}\t{dst}\t{}\t{}\t{}\n",
            flow_type(f),
            self.verdict(f),
            self.summary(f)
        );
        self.tab.write_str(&escape_terminal(&row, false));
    }
}
