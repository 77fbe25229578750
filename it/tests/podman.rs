//! Privileged: podman (rootful, CNI backend) as an independent runtime of
//! `datapath-cni`, configured as `/work/shared/notes/podman-cni.md`
//! describes but entirely in scratch space: its own `containers.conf`
//! (`CONTAINERS_CONF`), its own conflist directory whose networks point at
//! the plugin (with the node agent's socket and per-network pod labels),
//! its own storage (`--root`, `--runroot`, `--tmpdir`, vfs) holding a
//! busybox rootfs imported as a local image. Podman runs inside the node's
//! network namespace, so the host-side veths land on the node as they do
//! for the harness's own pods.
//!
//! Three containers: a busybox httpd server and two clients on networks
//! whose labels differ. Both get connectivity; a policy then admits only
//! one of them, and the node's exporter shows the forwarded and the
//! POLICY_DENIED flows with the container names. `podman rm` makes podman
//! call DEL: no veth, endpoint or lease remains, and the libcni cache
//! entries of our networks are removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use it::flows::{dport, dst, src, verdict};
use it::sys::{TempDir, unique};
use it::{Cluster, Node, require_privileges};

/// Podman with our configuration and storage, run in the node's netns.
struct Podman<'a> {
    node: &'a Node,
    dir: PathBuf,
    conf: PathBuf,
    networks: Vec<String>,
    containers: std::cell::RefCell<Vec<String>>,
    image: String,
}

impl Podman<'_> {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.node.netns.path().display()))
            .arg("podman")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("CONTAINERS_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run(&self, name: &str, network: &str, cmd: &[&str]) {
        self.containers.borrow_mut().push(name.to_string());
        let mut args = vec!["run", "-d", "--name", name, "--network", network];
        args.push(&self.image);
        args.extend_from_slice(cmd);
        self.ok(&args);
    }

    /// `wget` of `http://ip/` from inside a container (busybox `timeout`
    /// bounds a blocked attempt).
    fn fetch(&self, container: &str, ip: &str) -> Result<String, String> {
        let url = format!("http://{ip}/");
        let out = self.cmd(&[
            "exec", container, "timeout", "3", "wget", "-q", "-O", "-", &url,
        ]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn rm(&self, name: &str) {
        self.ok(&["rm", "-f", "-t", "1", name]);
        self.containers.borrow_mut().retain(|c| c != name);
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        for c in self.containers.borrow().iter() {
            let _ = self.cmd(&["rm", "-f", "-t", "0", c]);
        }
        let _ = self.cmd(&["rmi", "-f", &self.image]);
        // Storage mounts of our scratch root, if podman left any.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.dir.to_string_lossy().to_string();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: a valid NUL-terminated path.
                unsafe { libc_umount(&c) };
            }
        }
        for n in &self.networks {
            remove_cni_cache(n);
        }
    }
}

/// # Safety
/// `c` is a valid C string.
unsafe fn libc_umount(c: &std::ffi::CStr) {
    // SAFETY: the caller passes a valid NUL-terminated path.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// libcni's cached results of a network (`/var/lib/cni/results/NET-*`).
fn cni_cache(network: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/var/lib/cni/results")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{network}-")))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn remove_cni_cache(network: &str) {
    for p in cni_cache(network) {
        let _ = std::fs::remove_file(p);
    }
}

/// Host directories podman and libcni create on first use (a blob-info
/// cache, runc's state dir, libcni's result cache): the ones that did not
/// exist before the test are removed after it.
struct HostDirs(Vec<&'static str>);

impl HostDirs {
    fn note() -> Self {
        Self(
            ["/var/lib/containers", "/var/lib/cni", "/run/runc"]
                .into_iter()
                .filter(|d| !Path::new(d).exists())
                .collect(),
        )
    }
}

impl Drop for HostDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A busybox rootfs (one symlink per applet, passwd, group, a web root).
fn rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let busybox = it::sys::which("busybox").expect("busybox");
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    let list = Command::new(&busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(dir.join("www/index.html"), "landed via podman\n").unwrap();
}

const POLICY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: podman-server
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: podman-server
  ingress:
  - fromEndpoints:
    - matchLabels:
        role: frontend
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#;

#[test]
fn podman_containers_get_connectivity_and_policy_from_the_datapath() {
    require_privileges!("podman", "runc", "busybox", "conmon");
    let cluster = Cluster::single("10.210.6.0/24");
    {
        let node = cluster.node();
        let _host_dirs = HostDirs::note();
        let tmp = TempDir::new("it-podman-");
        let dir = tmp.path.clone();

        // Plugin dir, conflists (one network per label set), containers.conf.
        let plugins = dir.join("plugins");
        let netconf = dir.join("net.d");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::create_dir_all(&netconf).unwrap();
        std::os::unix::fs::symlink(it::bins::bin("datapath-cni"), plugins.join("datapath-cni"))
            .unwrap();
        let tag = unique("");
        let nets = [
            (format!("itsrv{tag}"), "app", "podman-server"),
            (format!("itfront{tag}"), "role", "frontend"),
            (format!("itother{tag}"), "role", "other"),
        ];
        for (name, k, v) in &nets {
            let list = serde_json::json!({
                "cniVersion": "1.0.0",
                "name": name,
                "plugins": [{
                    "type": "datapath-cni",
                    "agentSocket": node.socket,
                    "args": {"cni": {"labels": [{"key": k, "value": v}]}},
                }],
            });
            std::fs::write(
                netconf.join(format!("50-{name}.conflist")),
                serde_json::to_vec_pretty(&list).unwrap(),
            )
            .unwrap();
        }
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            format!(
                r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{}", "/usr/lib/cni"]
network_config_dir = "{}"

[engine]
runtime = "runc"
"#,
                plugins.display(),
                netconf.display()
            ),
        )
        .unwrap();
        let image = format!("localhost/itbusybox:{tag}");
        let podman = Podman {
            node,
            dir: dir.clone(),
            conf,
            networks: nets.iter().map(|n| n.0.clone()).collect(),
            containers: Default::default(),
            image: image.clone(),
        };
        let root = dir.join("rootfs");
        rootfs(&root);
        // tar | podman import: a local image, no registry.
        let tarball = dir.join("rootfs.tar");
        it::sys::sh(&[
            "tar",
            "-C",
            &root.to_string_lossy(),
            "-cf",
            &tarball.to_string_lossy(),
            ".",
        ]);
        podman.ok(&["import", &tarball.to_string_lossy(), &image]);
        let listed = podman.ok(&["network", "ls", "--format", "{{.Name}}"]);
        for (n, _, _) in &nets {
            assert!(listed.contains(n.as_str()), "podman sees {n}: {listed}");
        }

        let (srv, front, other) = (
            format!("itsrv{tag}"),
            format!("itfront{tag}"),
            format!("itother{tag}"),
        );
        podman.run(&srv, &nets[0].0, &["httpd", "-f", "-p", "80", "-h", "/www"]);
        podman.run(&front, &nets[1].0, &["sleep", "3600"]);
        podman.run(&other, &nets[2].0, &["sleep", "3600"]);
        let eps = node.endpoints();
        assert_eq!(eps.len(), 3, "three endpoints via podman: {eps:?}");
        let srv_ip = eps
            .iter()
            .find(|e| e.record.pod_name == srv)
            .unwrap_or_else(|| panic!("endpoint of {srv}: {eps:?}"))
            .record
            .ip
            .to_string();
        assert!(
            eps.iter()
                .find(|e| e.record.pod_name == srv)
                .is_some_and(|e| e
                    .identity_labels
                    .iter()
                    .any(|l| l.contains("app=podman-server"))),
            "{eps:?}"
        );
        assert_eq!(node.netns.links().len(), 3, "one host veth per container");

        // Connectivity without policy: both clients fetch the page (the
        // server's httpd may need a moment to listen).
        let mut first = Err(String::new());
        it::wait_for("the server container answers", || {
            first = podman.fetch(&front, &srv_ip);
            first.is_ok()
        });
        assert!(first.unwrap().contains("landed via podman"));
        podman.fetch(&other, &srv_ip).expect("other, no policy");

        // The policy admits only role=frontend.
        node.apply_policy("podman.yaml", POLICY);
        podman.fetch(&front, &srv_ip).expect("frontend allowed");
        podman.fetch(&other, &srv_ip).expect_err("other denied");

        node.wait_flow("other -> server:80 POLICY_DENIED", |f| {
            src(f) == other
                && dst(f) == srv
                && dport(f) == 80
                && verdict(f) == "DROPPED"
                && f["drop_reason_desc"] == "POLICY_DENIED"
        });
        node.wait_flow("frontend -> server:80 forwarded", |f| {
            src(f) == front && dst(f) == srv && dport(f) == 80 && verdict(f) == "FORWARDED"
        });

        // podman rm calls DEL: everything of the containers goes.
        for c in [&front, &other, &srv] {
            podman.rm(c);
        }
        it::wait_for("endpoints released by DEL", || node.endpoints().is_empty());
        assert!(node.netns.links().is_empty(), "{:?}", node.netns.links());
        let ipam: serde_json::Value =
            serde_json::from_slice(&std::fs::read(node.state.join("ipam.json")).unwrap()).unwrap();
        assert_eq!(
            ipam["allocated"].as_object().map(|o| o.len()),
            Some(0),
            "{ipam}"
        );
        for (n, _, _) in &nets {
            let left = cni_cache(n);
            assert!(left.is_empty(), "libcni cache left after DEL: {left:?}");
        }
        drop(podman);
        drop(tmp);
    }
    cluster.shutdown();
}
