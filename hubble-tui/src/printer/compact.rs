//! `-o compact`: `TIME[ [node]]: SRC (ID) ARROW DST (ID) TYPE VERDICT (SUMMARY)`.
//! Replies (`is_reply` true) swap the endpoints and print `<-`; an unknown
//! direction (`is_reply` absent) prints `<>`.

use std::io::{self, Write};

use proto::flow::Flow;

use super::{Printer, flow_type};
use crate::gotime::fmt_timestamp;

impl<W: Write, E: Write> Printer<W, E> {
    pub(crate) fn compact_flow(&mut self, f: &Flow) -> io::Result<()> {
        let (mut src, mut dst) = self.host_names(f);
        let mut src_id = self.identity(f.source.as_ref().map(|e| e.identity).unwrap_or(0));
        let mut dst_id = self.identity(f.destination.as_ref().map(|e| e.identity).unwrap_or(0));
        let arrow = match f.is_reply {
            None => "<>",
            Some(r) if r.value => {
                std::mem::swap(&mut src, &mut dst);
                std::mem::swap(&mut src_id, &mut dst_id);
                "<-"
            }
            Some(_) => "->",
        };
        let time = fmt_timestamp(self.opts.time_format, f.time.as_ref());
        let verdict = self.verdict(f);
        let summary = self.summary(f);
        let ty = flow_type(f);
        self.buf.clear();
        self.buf.push_str(&time);
        if self.opts.node_name {
            self.buf.push_str(" [");
            self.buf.push_str(&f.node_name);
            self.buf.push(']');
        }
        for part in [
            ": ", &src, " ", &src_id, " ", arrow, " ", &dst, " ", &dst_id, " ", &ty, " ", &verdict,
            " (", &summary, ")\n",
        ] {
            self.buf.push_str(part);
        }
        self.emit()
    }
}
