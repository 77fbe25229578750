//! `CNI_ARGS` parsing and the pod (namespace, name, labels) it names.

use std::collections::BTreeMap;

use crate::cni::wire::{CniError, NetConf, code};
use crate::defaults;

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
}
