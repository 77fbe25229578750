//! Running an operation inside another network namespace.
//!
//! Interface names, netlink and `bpf_link_create(ifindex)` all resolve in the
//! calling *thread's* network namespace, and `setns(CLONE_NEWNET)` changes
//! only the calling thread. So every per-namespace operation runs on a
//! dedicated, short-lived thread that enters the namespace and then exits:
//! no runtime worker or caller thread is ever left in a foreign namespace,
//! and the mount namespace (where the bpffs pins are) never changes
//! (`ip netns exec` would hide /sys/fs/bpf; see notes/aya-0.14.md §3).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{DatapathError, Result};

/// Runs `f` in the network namespace `ns` (a `/run/netns/NAME` or
/// `/proc/PID/ns/net` handle) on a dedicated thread, or on the calling
/// thread when `ns` is `None`. A panic in `f` is propagated.
pub fn in_netns<T: Send>(ns: Option<&Path>, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let Some(ns) = ns else { return f() };
    std::thread::scope(|s| {
        let handle = s.spawn(move || {
            let file = File::open(ns).map_err(|e| DatapathError::io("open netns", ns, e))?;
            // SAFETY: `file` is an open namespace fd for the duration of the
            // call; setns(CLONE_NEWNET) changes only this dedicated thread,
            // which ends right after `f`.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(DatapathError::io(
                    "setns",
                    ns,
                    std::io::Error::last_os_error(),
                ));
            }
            f()
        });
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The ifindex of `iface` in the calling thread's network namespace.
pub fn ifindex(iface: &str) -> Result<u32> {
    let name = std::ffi::CString::new(iface).map_err(|_| DatapathError::Invalid {
        what: "interface name",
        value: iface.to_string(),
    })?;
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        return Err(DatapathError::io(
            "if_nametoindex",
            iface,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(idx)
}

/// The IPv4 addresses of the calling thread's network namespace, loopback
/// excluded.
pub fn ipv4_addresses() -> Result<Vec<std::net::Ipv4Addr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`, freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(DatapathError::io(
            "getifaddrs",
            "",
            std::io::Error::last_os_error(),
        ));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid
        // until freeifaddrs; `ifa_addr` is null or points to a sockaddr
        // whose family says its real type.
        unsafe {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    out.push(ip);
                }
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    Ok(out)
}
