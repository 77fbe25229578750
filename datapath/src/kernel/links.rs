//! The pinned TCX links that attach the programs to pod veths and to the
//! node's VXLAN device: one per program and interface, under
//! `<pin_dir>/links/` (`ingress:<iface>`, `egress:<iface>` for a pod veth,
//! `overlay:<iface>` for `from_overlay` on the VXLAN device, `netdev:<iface>`
//! for `from_netdev` on the node's external device; bpffs refuses
//! names containing a dot with EPERM, so dots in interface names are
//! written as `:`). Creating or swapping a link ([`LinkOutcome`]), listing
//! ([`links`]), detaching ([`detach`]) and pruning defunct ones
//! ([`prune_defunct_links`]: only links whose interface is gone, so the
//! overlay link stays as long as its device exists);
//! [`crate::kernel::loader`] attaches through them and re-exports the
//! public items.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::SchedClassifierLink;
use aya::programs::{SchedClassifier, TcAttachType};

use crate::defaults;
use crate::error::{DatapathError, Result};

/// How one program ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// A new TCX link was created and pinned.
    Created,
    /// The program was swapped into the existing pinned link.
    Replaced,
    /// The pinned link was defunct (interface gone); a new one replaced it.
    Recreated,
}

/// A pinned TCX link, as found in the pin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPin {
    /// Pin path.
    pub path: PathBuf,
    /// Interface name (from the pin name).
    pub iface: String,
    /// `true` for TCX ingress (from_container, from_overlay), `false` for
    /// egress (to_container).
    pub ingress: bool,
    /// The program the link is for ([`defaults::PROG_FROM_CONTAINER`],
    /// [`defaults::PROG_TO_CONTAINER`], [`defaults::PROG_FROM_OVERLAY`] or
    /// [`defaults::PROG_FROM_NETDEV`]).
    pub program: &'static str,
    /// Kernel link id.
    pub link_id: u32,
    /// Program currently attached through the link.
    pub prog_id: u32,
    /// ifindex the link is attached to; 0 when defunct.
    pub ifindex: u32,
}

/// The programs: `(name, attach type, link pin direction)`.
pub(super) const PROGRAMS: [(&str, TcAttachType, &str); 2] = [
    (
        defaults::PROG_FROM_CONTAINER,
        TcAttachType::Ingress,
        "ingress",
    ),
    (defaults::PROG_TO_CONTAINER, TcAttachType::Egress, "egress"),
];

/// The overlay program on the node's VXLAN device: `(name, attach type,
/// link pin prefix)`.
pub(super) const OVERLAY_PROGRAM: (&str, TcAttachType, &str) = (
    defaults::PROG_FROM_OVERLAY,
    TcAttachType::Ingress,
    "overlay",
);

/// The NodePort program on the node's external device: `(name, attach
/// type, link pin prefix)`.
pub(super) const NETDEV_PROGRAM: (&str, TcAttachType, &str) =
    (defaults::PROG_FROM_NETDEV, TcAttachType::Ingress, "netdev");

pub(super) fn link_err(
    op: &'static str,
    prog: &'static str,
    iface: &str,
    e: impl std::error::Error,
) -> DatapathError {
    // Render the whole source chain: aya's top-level messages ("`BPF_OBJ_PIN`
    // failed") leave out the errno.
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    DatapathError::Link {
        op,
        prog,
        iface: iface.to_string(),
        message,
    }
}

/// Attaches one program; runs in the target netns. Returns the new link
/// to pin when one was created (an existing link stays pinned).
pub(super) fn attach_one(
    prog: &mut SchedClassifier,
    name: &'static str,
    iface: &str,
    attach_type: TcAttachType,
    ifindex: u32,
    pin: &Path,
) -> Result<(LinkOutcome, Option<FdLink>)> {
    let mut outcome = LinkOutcome::Created;
    if pin.exists() {
        match link_info(pin) {
            Ok(info) if info.ifindex == ifindex => {
                let pinned = PinnedLink::from_pin(pin)
                    .map_err(|e| link_err("open pinned link", name, iface, e))?;
                let link = SchedClassifierLink::try_from(FdLink::from(pinned))
                    .map_err(|e| link_err("adopt pinned link", name, iface, e))?;
                let id = prog
                    .attach_to_link(link)
                    .map_err(|e| link_err("replace program in link", name, iface, e))?;
                // The pin keeps the link (and now the new program) attached;
                // our fd can go.
                drop(
                    prog.take_link(id)
                        .map_err(|e| link_err("take link", name, iface, e))?,
                );
                return Ok((LinkOutcome::Replaced, None));
            }
            _ => {
                // Defunct (interface gone or re-created) or unreadable: replace.
                std::fs::remove_file(pin)
                    .map_err(|e| DatapathError::io("unpin defunct link", pin, e))?;
                outcome = LinkOutcome::Recreated;
            }
        }
    }
    let id = prog
        .attach(iface, attach_type)
        .map_err(|e| link_err("attach", name, iface, e))?;
    let link = prog
        .take_link(id)
        .map_err(|e| link_err("take link", name, iface, e))?;
    let fd_link = FdLink::try_from(link).map_err(|e| link_err("convert link", name, iface, e))?;
    Ok((outcome, Some(fd_link)))
}

fn check_iface(iface: &str) -> Result<()> {
    if iface.is_empty() || iface.contains('/') || iface.contains('\0') || iface.len() > 15 {
        return Err(DatapathError::Invalid {
            what: "interface name",
            value: iface.to_string(),
        });
    }
    Ok(())
}

pub(super) fn link_paths(pin_dir: &Path, iface: &str) -> Result<[PathBuf; 2]> {
    check_iface(iface)?;
    let dir = pin_dir.join(defaults::LINKS_SUBDIR);
    Ok(PROGRAMS.map(|(_, _, dir_name)| dir.join(link_pin_name(dir_name, iface))))
}

/// Pin path of the `from_overlay` link on the VXLAN device `iface`.
pub(super) fn overlay_link_path(pin_dir: &Path, iface: &str) -> Result<PathBuf> {
    check_iface(iface)?;
    Ok(pin_dir
        .join(defaults::LINKS_SUBDIR)
        .join(link_pin_name(OVERLAY_PROGRAM.2, iface)))
}

/// Pin path of the `from_netdev` link on the external device `iface`.
pub(super) fn netdev_link_path(pin_dir: &Path, iface: &str) -> Result<PathBuf> {
    check_iface(iface)?;
    Ok(pin_dir
        .join(defaults::LINKS_SUBDIR)
        .join(link_pin_name(NETDEV_PROGRAM.2, iface)))
}

/// `<direction>:<iface>`, with the interface's dots written as `:`. bpffs
/// rejects any name containing a dot with EPERM, and `:` never occurs in an
/// interface name (the kernel refuses it), so the mapping is reversible.
fn link_pin_name(direction: &str, iface: &str) -> String {
    format!("{direction}:{}", iface.replace('.', ":"))
}

/// The inverse of [`link_pin_name`]: `(program, ingress?, iface)`.
fn parse_link_pin_name(name: &str) -> Option<(&'static str, bool, String)> {
    let (prefix, iface) = name.split_once(':')?;
    let (program, attach_type, _) = PROGRAMS
        .into_iter()
        .chain([OVERLAY_PROGRAM, NETDEV_PROGRAM])
        .find(|(_, _, p)| *p == prefix)?;
    Some((
        program,
        matches!(attach_type, TcAttachType::Ingress),
        iface.replace(':', "."),
    ))
}

/// Detaches the datapath from a host-side veth by removing its link pins
/// (not the overlay's: see
/// [`detach_overlay`](crate::kernel::loader::detach_overlay)).
/// Returns how many pins were removed (0 if it was not attached).
pub fn detach(pin_dir: &Path, iface: &str) -> Result<usize> {
    let mut n = 0;
    for path in link_paths(pin_dir, iface)? {
        match std::fs::remove_file(&path) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DatapathError::io("unpin link", path, e)),
        }
    }
    Ok(n)
}

/// The pinned links of a node.
pub fn links(pin_dir: &Path) -> Result<Vec<LinkPin>> {
    let dir = pin_dir.join(defaults::LINKS_SUBDIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DatapathError::io("list links", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| DatapathError::io("list links", &dir, e))?
            .path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some((program, ingress, iface)) = parse_link_pin_name(file) else {
            continue;
        };
        let info = link_info(&path).map_err(|e| DatapathError::io("read link info", &path, e))?;
        out.push(LinkPin {
            iface,
            ingress,
            program,
            link_id: info.link_id,
            prog_id: info.prog_id,
            ifindex: info.ifindex,
            path,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Unpins every defunct link (its interface is gone); returns how many.
pub fn prune_defunct_links(pin_dir: &Path) -> Result<usize> {
    let mut n = 0;
    for l in links(pin_dir)? {
        if l.ifindex == 0 {
            std::fs::remove_file(&l.path)
                .map_err(|e| DatapathError::io("unpin link", &l.path, e))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The few `struct bpf_link_info` fields the links need.
#[derive(Debug, Clone, Copy)]
struct RawLinkInfo {
    link_id: u32,
    prog_id: u32,
    /// `tcx.ifindex`; 0 when the device is gone.
    ifindex: u32,
}

/// Reads a pinned link's info with raw `bpf()` calls: aya 0.14's `LinkInfo`
/// has no ifindex and its `FdLink` no `AsFd` (notes/aya-0.14.md §3).
fn link_info(pin: &Path) -> std::io::Result<RawLinkInfo> {
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const BPF_LINK_TYPE_TCX: u32 = 11;

    let path = CString::new(pin.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // union bpf_attr for BPF_OBJ_GET: { u64 pathname; u32 bpf_fd; u32 file_flags; s32 path_fd }.
    let mut attr = [0u64; 4];
    attr[0] = path.as_ptr() as u64;
    // SAFETY: attr is a zeroed bpf_attr prefix of the size passed, whose
    // pathname points to a NUL-terminated string alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; OwnedFd closes it.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };

    // struct bpf_link_info: u32 type, u32 id, u32 prog_id, (pad), union at 16;
    // the tcx member starts with u32 ifindex.
    let mut info = [0u64; 8];
    // info_by_fd: { u32 bpf_fd; u32 info_len; u64 info }.
    let mut attr = [0u64; 2];
    let fd_raw = std::os::fd::AsRawFd::as_raw_fd(&fd) as u32;
    attr[0] = u64::from(fd_raw) | ((std::mem::size_of_val(&info) as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    // SAFETY: attr describes `info`, a writable buffer of the size given,
    // alive for the call; the fd is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let link_type = info[0] as u32;
    let link_id = (info[0] >> 32) as u32;
    let prog_id = info[1] as u32;
    let ifindex = if link_type == BPF_LINK_TYPE_TCX {
        info[2] as u32
    } else {
        0
    };
    Ok(RawLinkInfo {
        link_id,
        prog_id,
        ifindex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_avoid_dots_and_round_trip() {
        for iface in ["lxc0", "eth0.100", "a.b.c", "lxc_1-x"] {
            let name = link_pin_name("ingress", iface);
            assert!(!name.contains('.'), "{name}");
            assert_eq!(
                parse_link_pin_name(&name),
                Some((defaults::PROG_FROM_CONTAINER, true, iface.to_string()))
            );
        }
        assert_eq!(
            parse_link_pin_name("egress:lxc0"),
            Some((defaults::PROG_TO_CONTAINER, false, "lxc0".to_string()))
        );
        assert_eq!(
            parse_link_pin_name("overlay:dp_vxlan"),
            Some((defaults::PROG_FROM_OVERLAY, true, "dp_vxlan".to_string()))
        );
        assert_eq!(
            overlay_link_path(Path::new("/x"), "dp_vxlan").unwrap(),
            Path::new("/x/links/overlay:dp_vxlan")
        );
        assert_eq!(
            parse_link_pin_name("netdev:eth0"),
            Some((defaults::PROG_FROM_NETDEV, true, "eth0".to_string()))
        );
        assert_eq!(
            netdev_link_path(Path::new("/x"), "eth0").unwrap(),
            Path::new("/x/links/netdev:eth0")
        );
        assert_eq!(parse_link_pin_name("other:lxc0"), None);
        assert!(link_paths(Path::new("/x"), "a/b").is_err());
        assert!(link_paths(Path::new("/x"), "").is_err());
    }
}
