//! `--input-file FILE|-`: jsonpb `GetFlowsResponse` lines (what `hubble
//! observe -o json` prints) read instead of a server, selected with the
//! request's filters, `since`/`until` and `first`/`last`, as upstream's
//! `IOReaderObserver` does. The input order is kept. Lines that do not parse
//! are skipped with a warning.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use anyhow::Context as _;
use flow_filter::FilterSet;
use proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response::ResponseTypes};

use crate::defaults;

/// What the reader hands to the printer.
#[derive(Debug)]
pub enum Item {
    /// A selected response.
    Response(Box<GetFlowsResponse>),
    /// A warning for stderr (an unparsable line).
    Warning(String),
}

fn nanos(ts: Option<&proto::wkt::Timestamp>) -> i128 {
    ts.map(|t| t.as_unix_nanos()).unwrap_or(0)
}

/// Reads `reader` and calls `f` for every selected response, in order.
pub fn for_each(
    reader: impl BufRead,
    req: &GetFlowsRequest,
    mut f: impl FnMut(Item) -> io::Result<()>,
) -> anyhow::Result<()> {
    let filters = FilterSet::compile(&req.whitelist, &req.blacklist).context("invalid filter")?;
    let n = req.number;
    let last = !req.first && n != 0 && n != u64::MAX;
    let first = req.first && n != 0 && n != u64::MAX;
    if last && n > defaults::INPUT_LAST_MAX {
        anyhow::bail!("--last must be <= 1_000_000, got {n}");
    }
    let mut ring: VecDeque<Box<GetFlowsResponse>> = VecDeque::new();
    let mut returned = 0u64;
    let since = req.since.as_ref().map(|t| t.as_unix_nanos());
    let until = req.until.as_ref().map(|t| t.as_unix_nanos());
    for line in reader.lines() {
        let line = line.context("reading the input file")?;
        if line.trim().is_empty() {
            continue;
        }
        let res: GetFlowsResponse = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                f(Item::Warning(format!(
                    "level=WARN msg=\"Failed to unmarshal json to flow\" error={} line={}\n",
                    crate::printer::go_quote(&e.to_string()),
                    crate::printer::go_quote(&line)
                )))?;
                continue;
            }
        };
        let t = nanos(res.time.as_ref());
        if since.is_some_and(|s| s > t) || until.is_some_and(|u| u < t) {
            continue;
        }
        let keep = match &res.response_types {
            Some(ResponseTypes::Flow(flow)) => filters.matches(flow),
            // Non-flow events carry no flow: only an empty allow list lets
            // them through.
            _ => req.whitelist.is_empty(),
        };
        if !keep {
            continue;
        }
        if last {
            if ring.len() as u64 == n {
                ring.pop_front();
            }
            ring.push_back(Box::new(res));
        } else {
            f(Item::Response(Box::new(res)))?;
            returned += 1;
            if first && returned >= n {
                return Ok(());
            }
        }
    }
    for r in ring {
        f(Item::Response(r))?;
    }
    Ok(())
}
