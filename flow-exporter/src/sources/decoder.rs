//! The decoder the pipeline runs raw records through: the parser with its
//! node name, enrichment (a static file reloaded as it changes, see
//! [`super::enrichment`], or the synthetic generator's own pods) and the
//! boot-to-wall clock offset measured by [`super::clock`].

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use flow_parser::{ClockOffset, Enricher, FlowText, Parser, SharedEndpoints, Synthetic};
use proto::flow::{Endpoint, Flow};

use super::clock;
use super::enrichment::{EnrichmentFile, EnrichmentReload};
use crate::defaults;
use crate::pipeline::{Decode, DecodeFailure};

/// The decoder for raw events and, for `--synthetic`, the generator whose
/// records it decodes.
pub struct Decoders {
    /// Decodes raw ABI records into flows.
    pub decode: Box<dyn Decode>,
    /// The synthetic generator, when asked for.
    pub generator: Option<Synthetic>,
    /// The enrichment file, when one was given: run
    /// [`EnrichmentFile::run`] to follow it while no flow comes, and
    /// subscribe to [`EnrichmentFile::nodes`] for `peer.Peer/Notify`.
    pub enrichment: Option<Arc<EnrichmentFile>>,
}

impl std::fmt::Debug for Decoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoders")
            .field("synthetic", &self.generator.is_some())
            .field("enrichment", &self.enrichment.as_ref().map(|f| f.path()))
            .finish()
    }
}

/// Builds the parser: node name, enrichment (a static file, or the synthetic
/// generator's own pods), and the boot-time → wall-clock offset.
pub fn decoder(
    node_name: &str,
    enrichment: Option<&Path>,
    synthetic: bool,
    seed: u64,
) -> anyhow::Result<Decoders> {
    let generator = synthetic.then(|| Synthetic::new(seed));
    let file = enrichment
        .map(|p| {
            EnrichmentFile::open(p).with_context(|| format!("load enrichment file {}", p.display()))
        })
        .transpose()?;
    let enricher = match (&file, &generator) {
        (Some(f), _) => Enricher::from_static(f.current()),
        (None, Some(g)) => Enricher::from_static(Arc::new(g.enrichment())),
        (None, None) => Enricher::none(),
    };
    let clock = clock::measure_offset().context("read CLOCK_BOOTTIME to convert event times")?;
    let parser = Parser::new(node_name, enricher);
    let reload = file.as_ref().map(|f| EnrichmentReload::new(Arc::clone(f)));
    let decode = ParserDecoder {
        parser,
        clock,
        reload,
    };
    Ok(Decoders {
        decode: Box::new(decode),
        generator,
        enrichment: file,
    })
}

/// The parser as the pipeline's [`Decode`]: decodes in place into the
/// flow it is handed (reusing its buffers), with the clock offset, and
/// follows the enrichment file when one was given.
pub struct ParserDecoder {
    parser: Parser,
    clock: ClockOffset,
    reload: Option<EnrichmentReload>,
}

impl std::fmt::Debug for ParserDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParserDecoder")
            .field("parser", &self.parser)
            .field("clock", &self.clock)
            .field("follows_file", &self.reload.is_some())
            .finish()
    }
}

impl ParserDecoder {
    /// A decoder without an enrichment file to follow (the parser keeps
    /// the enricher it was built with).
    pub fn new(parser: Parser, clock: ClockOffset) -> Self {
        ParserDecoder {
            parser,
            clock,
            reload: None,
        }
    }
}

impl Decode for ParserDecoder {
    fn decode(&mut self, raw: &[u8]) -> Result<Flow, DecodeFailure> {
        let mut flow = Flow::default();
        self.decode_into(raw, &mut flow)?;
        Ok(flow)
    }

    fn wall_time(&self, ktime_ns: u64) -> Option<proto::wkt::Timestamp> {
        use flow_parser::EventClock as _;
        Some(self.clock.wall_time(ktime_ns))
    }

    fn decode_into(&mut self, raw: &[u8], flow: &mut Flow) -> Result<(), DecodeFailure> {
        self.reloading(
            flow,
            |p, clock, flow| p.decode_into(raw, clock, flow),
            unknown_workload,
        )
    }

    fn decode_text(
        &mut self,
        raw: &[u8],
        flow: &mut Flow,
        endpoints: &mut SharedEndpoints,
        text: &mut FlowText,
    ) -> Result<(), DecodeFailure> {
        // As `decode_shared`, with the text kept apart.
        self.reloading(
            &mut (flow, endpoints, text),
            |p, clock, (flow, endpoints, text)| {
                p.decode_text_into(raw, clock, flow, endpoints, text)
            },
            |(_, endpoints, _)| unknown_shared(endpoints),
        )
    }

    fn decode_shared(
        &mut self,
        raw: &[u8],
        flow: &mut Flow,
        endpoints: &mut SharedEndpoints,
    ) -> Result<(), DecodeFailure> {
        // As `decode_into`, with the parser's shared endpoints.
        self.reloading(
            &mut (flow, endpoints),
            |p, clock, (flow, endpoints)| p.decode_shared_into(raw, clock, flow, endpoints),
            |(_, endpoints)| unknown_shared(endpoints),
        )
    }
}

impl ParserDecoder {
    /// Runs `decode` with the enrichment file's latest contents. When
    /// `unknown` says the decoded flow has a workload identity the loaded
    /// file has no labels for, the agent has most likely just written a new
    /// endpoint (a pod's first packets follow its CNI ADD closely): the file
    /// is looked at again now rather than on the next periodic check, and
    /// the event decoded once more with what it says.
    fn reloading<S>(
        &mut self,
        out: &mut S,
        decode: impl Fn(&mut Parser, &ClockOffset, &mut S) -> Result<(), flow_parser::DecodeError>,
        unknown: impl Fn(&S) -> bool,
    ) -> Result<(), DecodeFailure> {
        if let Some(r) = &mut self.reload
            && let Some(e) = r.poll(defaults::ENRICHMENT_RELOAD)
        {
            self.parser.set_enricher(e);
        }
        decode(&mut self.parser, &self.clock, out)?;
        if let Some(r) = &mut self.reload
            && unknown(out)
            && let Some(e) = r.poll(defaults::ENRICHMENT_STALE_RECHECK)
        {
            self.parser.set_enricher(e);
            decode(&mut self.parser, &self.clock, out)?;
        }
        Ok(())
    }
}

/// [`unknown_workload_side`] of the parser's shared endpoints.
fn unknown_shared(endpoints: &SharedEndpoints) -> bool {
    unknown_workload_side([
        endpoints.source.as_deref(),
        endpoints.destination.as_deref(),
    ])
}

/// Whether a side of `flow` carries a workload identity (not a reserved
/// one) that the enrichment knows no labels for.
fn unknown_workload(flow: &Flow) -> bool {
    unknown_workload_side([flow.source.as_ref(), flow.destination.as_ref()])
}

/// [`unknown_workload`] of a flow's two endpoints.
fn unknown_workload_side(eps: [Option<&Endpoint>; 2]) -> bool {
    eps.into_iter()
        .flatten()
        .any(|ep| ep.identity >= defaults::FIRST_WORKLOAD_IDENTITY && ep.labels.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::enrichment::tests::replace;
    use super::*;

    /// Decodes generated events until one comes from a workload identity.
    /// With `shared`, by the pipeline's path (endpoints apart, put back).
    fn next_workload_flow(
        d: &mut Decoders,
        generator: &mut Synthetic,
        shared: bool,
    ) -> proto::flow::Flow {
        let mut raw = Vec::new();
        loop {
            raw.clear();
            generator.next_event(&mut raw);
            let f = if shared {
                let (mut f, mut eps) = (Flow::default(), SharedEndpoints::default());
                d.decode.decode_shared(&raw, &mut f, &mut eps).unwrap();
                f.source = eps.source.as_deref().cloned();
                f.destination = eps.destination.as_deref().cloned();
                f
            } else {
                d.decode.decode(&raw).unwrap()
            };
            if f.source.as_ref().is_some_and(|e| e.identity >= 256) {
                return f;
            }
        }
    }

    #[test]
    fn a_flow_of_an_unknown_workload_rereads_the_file_at_once() {
        rereads_at_once(false);
    }

    #[test]
    fn a_flow_of_an_unknown_workload_rereads_the_file_at_once_shared() {
        rereads_at_once(true);
    }

    fn rereads_at_once(shared: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enrichment.yaml");
        std::fs::write(&path, "node_name: kind-worker\n").unwrap();
        let mut d = decoder("kind-worker", Some(&path), false, 1).unwrap();
        let mut generator = Synthetic::new(1);
        // An empty file: workload identities come out without labels.
        let f = next_workload_flow(&mut d, &mut generator, shared);
        assert!(f.source.unwrap().labels.is_empty());
        // The agent writes the pods (a newer file, atomically); the very
        // next flow of one of them is decoded with its labels, without
        // waiting for the periodic check.
        replace(&path, generator.enrichment().to_yaml().as_bytes(), 5);
        std::thread::sleep(crate::defaults::ENRICHMENT_STALE_RECHECK * 2);
        let f = next_workload_flow(&mut d, &mut generator, shared);
        assert!(
            !f.source.unwrap().labels.is_empty(),
            "labels from the new file"
        );
    }
}
