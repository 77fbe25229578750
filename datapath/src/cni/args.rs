//! `CNI_ARGS` parsing and the pod (namespace, name, labels) it names.

use std::collections::BTreeMap;

use crate::cni::wire::{CniError, NetConf, code};
use crate::defaults;
use crate::policy::NamedPort;

/// `CNI_ARGS`: `K=V;K=V`.
pub fn parse_cni_args(s: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut out = BTreeMap::new();
    for part in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                "invalid CNI_ARGS",
                format!("{part:?} is not KEY=VALUE"),
            )
        })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Who a pod is: namespace, name, labels, from `CNI_ARGS`
/// (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, and labels as
/// `K8S_POD_LABELS=k=v,k2=v2`) and the configuration's `args` (which win).
pub fn pod_identity(
    cni_args: &BTreeMap<String, String>,
    conf: &NetConf,
    container_id: &str,
) -> Result<(String, String, BTreeMap<String, String>), CniError> {
    let namespace = cni_args
        .get("K8S_POD_NAMESPACE")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| defaults::POD_NAMESPACE.to_string());
    let name = cni_args
        .get("K8S_POD_NAME")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| container_id.chars().take(12).collect());
    let mut labels = BTreeMap::new();
    if let Some(l) = cni_args.get("K8S_POD_LABELS") {
        for kv in l.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                CniError::new(
                    code::INVALID_ENV,
                    "invalid K8S_POD_LABELS in CNI_ARGS",
                    format!("{kv:?} is not key=value"),
                )
            })?;
            labels.insert(k.to_string(), v.to_string());
        }
    }
    for kv in &conf.args.cni.labels {
        labels.insert(kv.key.clone(), kv.value.clone());
    }
    labels.extend(conf.args.labels.clone());
    for k in labels.keys() {
        if k.is_empty() || k.contains(['=', ',', ';']) {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "invalid label key",
                format!("{k:?}"),
            ));
        }
    }
    Ok((namespace, name, labels))
}

/// The ports a pod declares by name: `K8S_POD_PORTS=http:80/TCP,dns:53/UDP`
/// in `CNI_ARGS` (protocol TCP when left out, as a Kubernetes
/// `containerPort`). A runtime with a pod spec passes its named
/// `containerPorts` this way; policies' `port: <name>` resolve to them.
pub fn pod_ports(cni_args: &BTreeMap<String, String>) -> Result<Vec<NamedPort>, CniError> {
    let mut out: Vec<NamedPort> = Vec::new();
    for p in cni_args
        .get("K8S_POD_PORTS")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let np: NamedPort = p.parse().map_err(|m: String| {
            CniError::new(code::INVALID_ENV, "invalid K8S_POD_PORTS in CNI_ARGS", m)
        })?;
        if out
            .iter()
            .any(|o| o.name == np.name && (o.port, o.protocol) != (np.port, np.protocol))
        {
            return Err(CniError::new(
                code::INVALID_ENV,
                "invalid K8S_POD_PORTS in CNI_ARGS",
                format!("port name {:?} declared twice", np.name),
            ));
        }
        out.push(np);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_identity_from_cni_args_and_config() {
        let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","args":{"labels":{"class":"xwing"}}}"#)
            .unwrap();
        let a = parse_cni_args(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=rebels;K8S_POD_NAME=x1;K8S_POD_LABELS=org=alliance,class=other",
        )
        .unwrap();
        let (ns, name, labels) = pod_identity(&a, &conf, "abcdef0123456789").unwrap();
        assert_eq!((ns.as_str(), name.as_str()), ("rebels", "x1"));
        assert_eq!(labels["org"], "alliance");
        assert_eq!(labels["class"], "xwing", "config args win");
        // podman: only a pod name.
        let a = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=tiefighter").unwrap();
        let (ns, name, _) = pod_identity(&a, &conf, "c").unwrap();
        assert_eq!((ns.as_str(), name.as_str()), ("default", "tiefighter"));
        assert!(parse_cni_args("novalue").is_err());
    }

    #[test]
    fn pod_ports_from_cni_args() {
        let a = parse_cni_args("K8S_POD_PORTS=http:8080,dns:53/UDP,metrics:9090/tcp").unwrap();
        let ports = pod_ports(&a).unwrap();
        let got: Vec<(&str, u16, u8)> = ports
            .iter()
            .map(|p| (p.name.as_str(), p.port, p.protocol))
            .collect();
        assert_eq!(
            got,
            vec![("dns", 53, 17), ("http", 8080, 6), ("metrics", 9090, 6)]
        );
        assert!(
            pod_ports(&parse_cni_args("K8S_POD_NAME=x").unwrap())
                .unwrap()
                .is_empty()
        );
        for (bad, why) in [
            ("K8S_POD_PORTS=http", "name:port"),
            ("K8S_POD_PORTS=http:0", "not a port"),
            ("K8S_POD_PORTS=http:70000", "not a port"),
            ("K8S_POD_PORTS=Http:80", "lowercase"),
            ("K8S_POD_PORTS=80:80", "at least one letter"),
            ("K8S_POD_PORTS=http:80/ICMP", "protocol"),
            ("K8S_POD_PORTS=http:80,http:81", "declared twice"),
        ] {
            let e = pod_ports(&parse_cni_args(bad).unwrap()).unwrap_err();
            let text = format!("{e:?}");
            assert!(text.contains(why), "{bad}: {text}");
        }
    }
}
