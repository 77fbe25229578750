//! `traffic_direction`: INGRESS or EGRESS, as seen by the endpoint.

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct TrafficDirectionFilter(Vec<i32>);

impl Predicate for TrafficDirectionFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.0.contains(&flow.traffic_direction)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.traffic_direction.is_empty() {
        out.push(TrafficDirectionFilter(f.traffic_direction.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{FlowFilter, TrafficDirection};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    fn directions(v: &[TrafficDirection]) -> FlowFilter {
        FlowFilter {
            traffic_direction: v.iter().map(|v| *v as i32).collect(),
            ..ff()
        }
    }

    #[rstest]
    #[case::ingress(&[TrafficDirection::Ingress], TrafficDirection::Ingress, true)]
    #[case::egress_vs_ingress(&[TrafficDirection::Egress], TrafficDirection::Ingress, false)]
    #[case::both(&[TrafficDirection::Ingress, TrafficDirection::Egress], TrafficDirection::Egress, true)]
    #[case::unknown(&[TrafficDirection::Ingress], TrafficDirection::Unknown, false)]
    fn traffic_direction(
        #[case] values: &[TrafficDirection],
        #[case] dir: TrafficDirection,
        #[case] want: bool,
    ) {
        let flow = FlowBuilder::new().traffic_direction(dir).build();
        check(&[directions(values)], &flow, want);
    }
}
