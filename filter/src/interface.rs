//! `interface`: the network interface the flow was observed on. Each value
//! may set the index, the name or both; an unset part matches any.

use proto::flow::{Flow, FlowFilter, NetworkInterface};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct InterfaceFilter(Vec<NetworkInterface>);

impl Predicate for InterfaceFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(iface) = flow.interface.as_ref() else {
            return false;
        };
        self.0.iter().any(|f| {
            (f.index == 0 || f.index == iface.index) && (f.name.is_empty() || f.name == iface.name)
        })
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.interface.is_empty() {
        out.push(InterfaceFilter(f.interface.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{FlowFilter, NetworkInterface};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    fn iface(index: u32, name: &str) -> NetworkInterface {
        NetworkInterface {
            index,
            name: name.into(),
        }
    }

    #[rstest]
    #[case::by_name(vec![iface(0, "eth0")], Some((2, "eth0")), true)]
    #[case::by_index(vec![iface(2, "")], Some((2, "eth0")), true)]
    #[case::both(vec![iface(2, "eth0")], Some((2, "eth0")), true)]
    #[case::name_differs(vec![iface(2, "eth1")], Some((2, "eth0")), false)]
    #[case::index_differs(vec![iface(3, "eth0")], Some((2, "eth0")), false)]
    #[case::one_of(vec![iface(0, "lxc1"), iface(0, "eth0")], Some((2, "eth0")), true)]
    #[case::wildcard_entry(vec![iface(0, "")], Some((2, "eth0")), true)]
    #[case::no_interface(vec![iface(0, "")], None, false)]
    fn interface(
        #[case] values: Vec<NetworkInterface>,
        #[case] flow_iface: Option<(u32, &str)>,
        #[case] want: bool,
    ) {
        let b = FlowBuilder::new();
        let flow = match flow_iface {
            Some((i, n)) => b.interface(i, n),
            None => b,
        }
        .build();
        let f = FlowFilter {
            interface: values,
            ..ff()
        };
        check(&[f], &flow, want);
    }
}
