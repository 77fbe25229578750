//! Privileged, on a two-node local cluster (a real etcd as the cluster
//! store): the services control plane. One `POST /v1/services` on one
//! node puts the Service in force on every node, with backends on both
//! nodes matched by labels and a NodePort frontend on each node's own
//! address; a pod deleted on one node leaves the backends everywhere; an
//! invalid Service is refused naming it; a delete through the other node
//! removes it everywhere. (The kernel load balancer is tested elsewhere;
//! this checks the desired state every agent computes.) The test ends by
//! checking that nothing of its cluster is left.

use datapath::agent::services::ServiceList;
use datapath::api::ServiceApply;
use it::{Cluster, Node, require_privileges, wait_for};
use serde_json::Value;

const WEB: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: NodePort
  clusterIP: 10.96.0.40
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
    nodePort: 30040
";

fn services(n: &Node) -> ServiceList {
    n.client().get("/v1/services").expect("GET /v1/services")
}

/// The backends (`addr:port/proto`) of frontend `front` on node `n`.
fn backends(n: &Node, front: &str) -> Vec<String> {
    services(n)
        .frontends
        .iter()
        .find(|f| f.frontend == front)
        .map(|f| f.backends.iter().map(|b| b.address.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn a_service_applied_on_one_node_is_in_force_on_every_node() {
    require_privileges!("busybox", "etcd");
    let cluster = Cluster::multi(&["10.219.1.0/24", "10.219.2.0/24"]);
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        let a = n1.add_pod("web-a", "app=web");
        let b = n2.add_pod("web-b", "app=web");
        let _other = n2.add_pod("db", "app=db");

        let r: Value = n1
            .client()
            .post(
                "/v1/services",
                &ServiceApply {
                    yaml: WEB.to_string(),
                },
            )
            .expect("apply the service");
        assert_eq!(r["applied"], serde_json::json!(["default/web"]));
        let mut both = vec![format!("{}:8080/TCP", a.ip), format!("{}:8080/TCP", b.ip)];
        both.sort();
        for n in [n1, n2] {
            wait_for(&format!("{} has web with both backends", n.name), || {
                let mut got = backends(n, "10.96.0.40:80/TCP");
                got.sort();
                got == both
            });
            let node_ip = n.opts.cluster.as_ref().expect("cluster node").ip;
            let front = format!("{node_ip}:30040/TCP");
            let l = services(n);
            let np = l
                .frontends
                .iter()
                .find(|f| f.frontend == front)
                .unwrap_or_else(|| panic!("{}: no NodePort frontend {front}: {l:?}", n.name));
            assert_eq!(np.kind, "NodePort");
            assert_eq!(np.service, "default/web");
            assert_eq!(np.backends.len(), 2, "{np:?}");
        }

        // A frontend already in force cannot be taken: refused, naming both.
        let e = n2
            .client()
            .post::<_, Value>(
                "/v1/services",
                &ServiceApply {
                    yaml: WEB.replace("name: web", "name: thief"),
                },
            )
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");
        assert!(
            e.to_string().contains("Service default/thief")
                && e.to_string()
                    .contains("already used by Service default/web"),
            "{e}"
        );

        // A backend pod goes away on node 2: every node drops it.
        let b_addr = format!("{}:8080/TCP", b.ip);
        assert!(b.del().ok, "CNI DEL of web-b");
        for n in [n1, n2] {
            wait_for(&format!("{} dropped web-b", n.name), || {
                backends(n, "10.96.0.40:80/TCP") == [format!("{}:8080/TCP", a.ip)]
            });
        }
        assert!(!backends(n1, "10.96.0.40:80/TCP").contains(&b_addr));

        // Deleted through node 2, gone everywhere.
        let r: Value = n2
            .client()
            .delete("/v1/services/default/web")
            .expect("delete the service");
        assert_eq!(r["removed"], true);
        for n in [n1, n2] {
            wait_for(&format!("{} has no service", n.name), || {
                services(n).frontends.is_empty()
            });
        }
    }
    cluster.shutdown();
}
