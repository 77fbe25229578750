//! Loading the kernel programs, pinning their maps, attaching them to pod
//! veths and to the node's VXLAN device through pinned TCX links, and
//! cleaning all of it up.
//!
//! Layout of a node's pin directory (`defaults::BPFFS_ROOT/<node>/`):
//!
//! ```text
//! <pin_dir>/<map>                    every map, pinned by name (LIBBPF_PIN_BY_NAME)
//! <pin_dir>/links/ingress:<iface>    TCX link of from_container on the host-side veth
//! <pin_dir>/links/egress:<iface>     TCX link of to_container
//! <pin_dir>/links/overlay:<iface>    TCX ingress link of from_overlay on the VXLAN device
//! <pin_dir>/links/netdev:<iface>     TCX ingress link of from_netdev (NodePort) on the external device
//! ```
//!
//! (bpffs refuses names containing a dot with EPERM, so dots in interface
//! names are written as `:`, which no interface name contains.)
//!
//! The overlay, in the order the agent runs it (see
//! [`crate::kernel::tunnel`]): `ensure_vxlan` (the device and its ifindex)
//! → [`Datapath::load`] with `config.tunnel_ifindex` set (so a restart never
//! runs a moment without the tunnel) → [`Datapath::attach_overlay`] (also
//! writes `tunnel_ifindex`) → [`Datapath::attach`] per pod; remote pods are
//! ipcache /32 entries with `tunnel_ep` = their node's underlay IPv4.
//!
//! Restart without a gap: a new [`Datapath`] reuses the pinned maps (after
//! checking that each pin has the shape the object expects; a stale one is
//! replaced), and [`Datapath::attach`] swaps its freshly loaded programs
//! into the existing pinned links (`bpf_link_update`), so the interface
//! never runs without a program. A link whose interface is gone (its netns
//! was deleted, or the veth re-created) is defunct: it is unpinned and a new
//! link is created instead.
//!
//! The links themselves (pin names, listing, detaching, pruning) are
//! [`crate::kernel::links`]; their public items are re-exported here.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use aya::maps::MapInfo;
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};

use crate::defaults;
use crate::error::{DatapathError, Result};
use crate::kernel::maps::{Config, MAP_SHAPES, Maps, names};
use crate::kernel::netns::{ifindex, in_netns};

pub use crate::kernel::links::{LinkOutcome, LinkPin, detach, links, prune_defunct_links};
use crate::kernel::links::{
    NETDEV_PROGRAM, OVERLAY_PROGRAM, PROGRAMS, attach_one, link_err, link_paths, netdev_link_path,
    overlay_link_path,
};

/// The kernel object built from `ebpf/bpf/lxc.bpf.c` by build.rs (empty
/// when the crate was built without clang).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lxc.bpf.o"));

/// Map capacities (`max_entries`), applied when a map is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSizes {
    /// `endpoints`.
    pub endpoints: u32,
    /// `ipcache`.
    pub ipcache: u32,
    /// `policy`.
    pub policy: u32,
    /// `ct4`.
    pub ct4: u32,
    /// `events` ring size in bytes (power of two, multiple of the page size).
    pub events_ring_bytes: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        Self {
            endpoints: defaults::ENDPOINTS_MAX,
            ipcache: defaults::IPCACHE_MAX,
            policy: defaults::POLICY_MAX,
            ct4: defaults::CT4_MAX,
            events_ring_bytes: defaults::EVENTS_RING_BYTES,
        }
    }
}

impl MapSizes {
    fn max_entries(&self, name: &str) -> u32 {
        match name {
            names::ENDPOINTS => self.endpoints,
            names::IPCACHE => self.ipcache,
            names::POLICY => self.policy,
            names::CT4 => self.ct4,
            names::EVENTS => self.events_ring_bytes,
            names::DROP_STATS => crate::kernel::maps::DROP_STATS_ENTRIES,
            names::METRICS => crate::kernel::maps::METRICS_ENTRIES,
            names::LB4_SERVICES => defaults::LB4_SERVICES_MAX,
            names::LB4_BACKENDS => defaults::LB4_BACKENDS_MAX,
            names::LB4_REVERSE_NAT => defaults::LB4_REVERSE_NAT_MAX,
            names::LB4_MAGLEV => defaults::LB4_MAGLEV_MAX,
            names::LB4_AFFINITY => defaults::LB4_AFFINITY_MAX,
            names::LB4_STATS => ebpf::maps::lb_stat::ENTRIES,
            _ => 1,
        }
    }
}

/// How to load the datapath.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The node's pin directory (on a bpffs).
    pub pin_dir: PathBuf,
    /// Map capacities.
    pub sizes: MapSizes,
    /// Runtime configuration written after load.
    pub config: Config,
    /// Load this object file instead of the embedded one.
    pub object: Option<PathBuf>,
}

impl LoadOptions {
    /// Defaults for a pin directory.
    pub fn new(pin_dir: impl Into<PathBuf>) -> Self {
        Self {
            pin_dir: pin_dir.into(),
            sizes: MapSizes::default(),
            config: Config::default(),
            object: None,
        }
    }
}

/// What happened to each pinned map during [`Datapath::load`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Maps whose existing pin was reused (state carried over).
    pub reused: Vec<String>,
    /// Maps whose pin had the wrong shape and was replaced: `(name, why)`.
    pub replaced: Vec<(String, String)>,
    /// Maps created fresh.
    pub created: Vec<String>,
}

/// Where to attach: a host-side veth, in a network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachTarget {
    /// The node's network namespace handle (`/run/netns/NODE`), or `None`
    /// for the caller's namespace.
    pub netns: Option<PathBuf>,
    /// The host-side veth of the pod.
    pub iface: String,
}

/// Result of [`Datapath::attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachReport {
    /// `from_container` at TCX ingress.
    pub ingress: LinkOutcome,
    /// `to_container` at TCX egress.
    pub egress: LinkOutcome,
    /// The interface's ifindex in its namespace.
    pub ifindex: u32,
}

/// Result of [`Datapath::attach_overlay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayAttachReport {
    /// `from_overlay` at TCX ingress of the VXLAN device.
    pub ingress: LinkOutcome,
    /// The device's ifindex in the node namespace (now in
    /// `dp_config.tunnel_ifindex`).
    pub ifindex: u32,
}

/// The loaded datapath of one node.
pub struct Datapath {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    report: LoadReport,
}

impl std::fmt::Debug for Datapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datapath")
            .field("pin_dir", &self.pin_dir)
            .field("report", &self.report)
            .finish()
    }
}

impl Datapath {
    /// Loads the object, creating or re-adopting the pinned maps, loads
    /// both programs (the verifier runs here) and writes the configuration.
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        let pin_dir = opts.pin_dir.clone();
        std::fs::create_dir_all(pin_dir.join(defaults::LINKS_SUBDIR))
            .map_err(|e| DatapathError::io("create pin directory", &pin_dir, e))?;
        let report = check_pins(&pin_dir, &opts.sizes)?;

        let file_bytes;
        let bytes: &[u8] = match &opts.object {
            Some(path) => {
                file_bytes = std::fs::read(path)
                    .map_err(|e| DatapathError::io("read BPF object", path, e))?;
                &file_bytes
            }
            None => OBJECT,
        };
        if bytes.is_empty() {
            return Err(DatapathError::ObjectMissing);
        }
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(&pin_dir);
        for (name, ..) in MAP_SHAPES {
            loader.map_max_entries(name, opts.sizes.max_entries(name));
        }
        let mut ebpf = loader.load(bytes).map_err(DatapathError::Load)?;
        for (name, ..) in PROGRAMS
            .into_iter()
            .chain([OVERLAY_PROGRAM, NETDEV_PROGRAM])
        {
            program_mut(&mut ebpf, name)?
                .load()
                .map_err(|source| DatapathError::Program { name, source })?;
        }
        let dp = Self {
            ebpf,
            pin_dir,
            report,
        };
        dp.maps()?.set_config(&opts.config)?;
        Ok(dp)
    }

    /// The node's pin directory.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// What happened to the pinned maps during load.
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// Opens the node's maps (from their pins).
    pub fn maps(&self) -> Result<Maps> {
        Maps::open(&self.pin_dir)
    }

    /// A loaded program, e.g. for `BPF_PROG_TEST_RUN`.
    pub fn program(&self, name: &'static str) -> Result<&SchedClassifier> {
        self.ebpf
            .program(name)
            .ok_or_else(|| DatapathError::Missing {
                kind: "program",
                name: name.into(),
            })?
            .try_into()
            .map_err(|source| DatapathError::Program { name, source })
    }

    /// The kernel program ids of `(from_container, to_container)`.
    pub fn program_ids(&self) -> Result<(u32, u32)> {
        let id = |name: &'static str| -> Result<u32> {
            self.program(name)?
                .info()
                .map(|i| i.id())
                .map_err(|source| DatapathError::Program { name, source })
        };
        Ok((
            id(defaults::PROG_FROM_CONTAINER)?,
            id(defaults::PROG_TO_CONTAINER)?,
        ))
    }

    /// The kernel program id of `from_overlay`.
    pub fn overlay_program_id(&self) -> Result<u32> {
        let name = defaults::PROG_FROM_OVERLAY;
        self.program(name)?
            .info()
            .map(|i| i.id())
            .map_err(|source| DatapathError::Program { name, source })
    }

    /// Attaches `from_overlay` at TCX ingress of the node's VXLAN device
    /// `target.iface` (made by
    /// [`ensure_vxlan`](crate::kernel::tunnel::ensure_vxlan)) inside
    /// `target.netns`, through a pinned link exactly as [`Datapath::attach`]
    /// does for pods (a restart swaps the program in place; a link whose
    /// device was re-created is replaced), then points
    /// `dp_config.tunnel_ifindex` at the device so `from_container` starts
    /// sending remote pods' traffic into it.
    pub fn attach_overlay(&mut self, target: &AttachTarget) -> Result<OverlayAttachReport> {
        let pin = overlay_link_path(&self.pin_dir, &target.iface)?;
        let (name, attach_type, _) = OVERLAY_PROGRAM;
        let ebpf = &mut self.ebpf;
        let pin_ref = &pin;
        let (ifindex, (outcome, new_link)) = in_netns(target.netns.as_deref(), move || {
            let ifindex = ifindex(&target.iface)?;
            let prog = program_mut(ebpf, name)?;
            let r = attach_one(prog, name, &target.iface, attach_type, ifindex, pin_ref)?;
            Ok((ifindex, r))
        })?;
        // Pinned from the calling thread: the pin lives in its mount namespace.
        if let Some(link) = new_link {
            link.pin(&pin)
                .map_err(|e| link_err("pin link", name, &target.iface, e))?;
        }
        let mut maps = self.maps()?;
        let mut config = maps.config()?;
        if config.tunnel_ifindex != ifindex {
            config.tunnel_ifindex = ifindex;
            maps.set_config(&config)?;
        }
        Ok(OverlayAttachReport {
            ingress: outcome,
            ifindex,
        })
    }

    /// Attaches `from_netdev` (NodePort) at TCX ingress of the node's
    /// external device `target.iface` (the underlay interface that carries
    /// the node IP) inside `target.netns`, through a pinned link as
    /// [`Datapath::attach_overlay`] does. Only packets to a NodePort
    /// frontend are touched; everything else goes on to the node stack.
    pub fn attach_netdev(&mut self, target: &AttachTarget) -> Result<LinkOutcome> {
        let pin = netdev_link_path(&self.pin_dir, &target.iface)?;
        let (name, attach_type, _) = NETDEV_PROGRAM;
        let ebpf = &mut self.ebpf;
        let pin_ref = &pin;
        let (outcome, new_link) = in_netns(target.netns.as_deref(), move || {
            let ifindex = ifindex(&target.iface)?;
            let prog = program_mut(ebpf, name)?;
            attach_one(prog, name, &target.iface, attach_type, ifindex, pin_ref)
        })?;
        if let Some(link) = new_link {
            link.pin(&pin)
                .map_err(|e| link_err("pin link", name, &target.iface, e))?;
        }
        Ok(outcome)
    }

    /// Attaches `from_container` (TCX ingress) and `to_container` (TCX
    /// egress) to the host-side veth `target.iface` inside `target.netns`,
    /// through pinned links: an existing pinned link gets the new program
    /// swapped in atomically; otherwise a new link is created and pinned.
    pub fn attach(&mut self, target: &AttachTarget) -> Result<AttachReport> {
        let links = link_paths(&self.pin_dir, &target.iface)?;
        let ebpf = &mut self.ebpf;
        let links_ref = &links;
        let (ifindex, attached) = in_netns(target.netns.as_deref(), move || {
            let ifindex = ifindex(&target.iface)?;
            let mut attached = Vec::with_capacity(PROGRAMS.len());
            for (i, (name, attach_type, _)) in PROGRAMS.into_iter().enumerate() {
                let prog = program_mut(ebpf, name)?;
                attached.push(attach_one(
                    prog,
                    name,
                    &target.iface,
                    attach_type,
                    ifindex,
                    &links_ref[i],
                )?);
            }
            Ok((ifindex, attached))
        })?;
        // Pin on the calling thread, outside the namespace switch: the pin
        // lives in the mount namespace, which is the caller's.
        let mut outcomes = [LinkOutcome::Created; 2];
        for (i, (outcome, new_link)) in attached.into_iter().enumerate() {
            outcomes[i] = outcome;
            if let Some(link) = new_link {
                link.pin(&links[i])
                    .map_err(|e| link_err("pin link", PROGRAMS[i].0, &target.iface, e))?;
            }
        }
        Ok(AttachReport {
            ingress: outcomes[0],
            egress: outcomes[1],
            ifindex,
        })
    }
}

/// Detaches `from_netdev` from the external device `iface` (removes its
/// link pin). Returns whether a link was pinned.
pub fn detach_netdev(pin_dir: &Path, iface: &str) -> Result<bool> {
    let pin = netdev_link_path(pin_dir, iface)?;
    match std::fs::remove_file(&pin) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DatapathError::io("unpin link", pin, e)),
    }
}

/// Detaches `from_overlay` from the VXLAN device `iface` (removes its link
/// pin) and clears `dp_config.tunnel_ifindex`, so remote pods are reached
/// through the node stack again. Returns whether a link was pinned.
pub fn detach_overlay(pin_dir: &Path, iface: &str) -> Result<bool> {
    let pin = overlay_link_path(pin_dir, iface)?;
    if pin_dir.join(names::CONFIG).exists() {
        let mut maps = Maps::open(pin_dir)?;
        let mut config = maps.config()?;
        if config.tunnel_ifindex != 0 {
            config.tunnel_ifindex = 0;
            maps.set_config(&config)?;
        }
    }
    match std::fs::remove_file(&pin) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DatapathError::io("unpin link", pin, e)),
    }
}

fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut SchedClassifier> {
    ebpf.program_mut(name)
        .ok_or_else(|| DatapathError::Missing {
            kind: "program",
            name: name.into(),
        })?
        .try_into()
        .map_err(|source| DatapathError::Program { name, source })
}

/// Removes everything the datapath pinned for a node: links (detaching
/// the programs), maps (their state is freed once no program uses them)
/// and the directories.
pub fn unpin_all(pin_dir: &Path) -> Result<()> {
    let links_dir = pin_dir.join(defaults::LINKS_SUBDIR);
    for l in links(pin_dir)? {
        remove_if_exists(&l.path)?;
    }
    for (name, ..) in MAP_SHAPES {
        remove_if_exists(&pin_dir.join(name))?;
    }
    for dir in [&links_dir, &pin_dir.to_path_buf()] {
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DatapathError::io("remove pin directory", dir.as_path(), e)),
        }
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DatapathError::io("unpin", path, e)),
    }
}

/// Checks every existing map pin against the shape the object expects and
/// removes the ones that do not match (aya 0.14 would silently reuse them).
fn check_pins(pin_dir: &Path, sizes: &MapSizes) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    for (name, ty, key, value) in MAP_SHAPES {
        let path = pin_dir.join(name);
        if !path.exists() {
            report.created.push(name.to_string());
            continue;
        }
        let max = sizes.max_entries(name);
        let why = match MapInfo::from_pin(&path) {
            Err(e) => Some(format!("unreadable pin: {e}")),
            Ok(info) => {
                let got_ty = info.map_type().ok();
                if got_ty != Some(ty) {
                    Some(format!("type {got_ty:?}, want {ty:?}"))
                } else if info.key_size() != key || info.value_size() != value {
                    Some(format!(
                        "key/value size {}/{}, want {key}/{value}",
                        info.key_size(),
                        info.value_size()
                    ))
                } else if info.max_entries() != max {
                    Some(format!("max_entries {}, want {max}", info.max_entries()))
                } else {
                    None
                }
            }
        };
        match why {
            None => report.reused.push(name.to_string()),
            Some(why) => {
                std::fs::remove_file(&path)
                    .map_err(|e| DatapathError::io("unpin mismatched map", &path, e))?;
                report.replaced.push((name.to_string(), why));
            }
        }
    }
    Ok(report)
}

/// Makes sure `mount_point` is a bpffs, mounting one there if it is not
/// (a fresh machine boots without /sys/fs/bpf mounted). Returns whether it
/// mounted.
pub fn ensure_bpffs(mount_point: &Path) -> Result<bool> {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let path =
        CString::new(mount_point.as_os_str().as_bytes()).map_err(|_| DatapathError::Invalid {
            what: "bpffs path",
            value: mount_point.display().to_string(),
        })?;
    // SAFETY: statfs writes into the zeroed struct we own; path is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(false);
    }
    std::fs::create_dir_all(mount_point)
        .map_err(|e| DatapathError::io("create bpffs mount point", mount_point, e))?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call; data is NULL.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            path.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(DatapathError::io(
            "mount bpffs",
            mount_point,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(true)
}
