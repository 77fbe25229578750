//! Agent and debug events (`hubble observe agent-events` / `debug-events`)
//! in upstream's forms: compact `TIME[ [node]]: TYPE (DETAILS)` for agent
//! events and `TIME[ [node]]: FROM TYPE MARK: 0x… CPU: NN (MESSAGE)` for
//! debug events, `KEY: VALUE` blocks, tab-aligned tables, and the protojson
//! of the whole response for json/jsonpb (the bare event with
//! `HUBBLE_COMPAT=legacy-json-output`).

use std::io::{self, Write};

use proto::flow::{
    AgentEvent, AgentEventType, DebugEventType, Endpoint, ServiceUpsertNotificationAddr,
    agent_event::Notification,
};
use proto::observer::{GetAgentEventsResponse, GetDebugEventsResponse};

use super::{Output, Printer, escape_terminal};
use crate::gotime::{TimeFormat, fmt_timestamp};

/// An enum value's name, or its number when unknown (Go's `%s` of an
/// unknown enum value prints the number).
fn enum_name<T: TryFrom<i32>>(v: i32, name: impl Fn(&T) -> &'static str) -> String {
    T::try_from(v)
        .map(|t| name(&t).to_owned())
        .unwrap_or_else(|_| v.to_string())
}

fn service_addr(a: &ServiceUpsertNotificationAddr) -> String {
    if a.ip.contains(':') {
        format!("[{}]:{}", a.ip, a.port)
    } else {
        format!("{}:{}", a.ip, a.port)
    }
}

/// The DETAILS of an agent event (`UNKNOWN` when the notification does not
/// match the type).
#[expect(deprecated, reason = "upstream still prints the service events")]
pub fn agent_event_details(e: &AgentEvent, tf: TimeFormat) -> String {
    use AgentEventType as T;
    let ty = T::try_from(e.r#type).ok();
    match (ty, &e.notification) {
        (Some(T::AgentEventUnknown), Some(Notification::Unknown(u))) => {
            format!("type: {}, notification: {}", u.r#type, u.notification)
        }
        (Some(T::AgentStarted), Some(Notification::AgentStart(a))) => {
            format!("start time: {}", fmt_timestamp(tf, a.time.as_ref()))
        }
        (Some(T::PolicyUpdated | T::PolicyDeleted), Some(Notification::PolicyUpdate(p))) => {
            format!(
                "labels: [{}], revision: {}, count: {}",
                p.labels.join(","),
                p.revision,
                p.rule_count
            )
        }
        (
            Some(T::EndpointRegenerateSuccess | T::EndpointRegenerateFailure),
            Some(Notification::EndpointRegenerate(r)),
        ) => {
            let mut s = format!("id: {}, labels: [{}]", r.id, r.labels.join(","));
            if !r.error.is_empty() {
                s.push_str(&format!(", error: {}", r.error));
            }
            s
        }
        (Some(T::EndpointCreated | T::EndpointDeleted), Some(Notification::EndpointUpdate(u))) => {
            let mut s = format!("id: {}", u.id);
            if !u.pod_name.is_empty() {
                s.push_str(&format!(", pod name: {}", u.pod_name));
            }
            if !u.namespace.is_empty() {
                s.push_str(&format!(", namespace: {}", u.namespace));
            }
            s.push_str(&format!(", labels: [{}]", u.labels.join(",")));
            if !u.error.is_empty() {
                s.push_str(&format!(", error: {}", u.error));
            }
            s
        }
        (Some(T::IpcacheUpserted | T::IpcacheDeleted), Some(Notification::IpcacheUpdate(u))) => {
            let mut s = format!("cidr: {}, identity: {}", u.cidr, u.identity);
            if let Some(old) = &u.old_identity {
                s.push_str(&format!(", old identity: {}", old.value));
            }
            if !u.host_ip.is_empty() {
                s.push_str(&format!(", host ip: {}", u.host_ip));
            }
            if !u.old_host_ip.is_empty() {
                s.push_str(&format!(", old host ip: {}", u.old_host_ip));
            }
            s.push_str(&format!(", encrypt key: {}", u.encrypt_key));
            s
        }
        (Some(T::ServiceUpserted), Some(Notification::ServiceUpsert(svc))) => {
            let mut s = format!("id: {}", svc.id);
            if let Some(f) = &svc.frontend_address {
                s.push_str(&format!(", frontend: {}", service_addr(f)));
            }
            if !svc.backend_addresses.is_empty() {
                let b: Vec<String> = svc.backend_addresses.iter().map(service_addr).collect();
                s.push_str(&format!(", backends: [{}]", b.join(",")));
            }
            let traffic_policy = &svc.traffic_policy;
            for (k, v) in [
                ("type", &svc.r#type),
                ("traffic policy", traffic_policy),
                ("namespace", &svc.namespace),
                ("name", &svc.name),
            ] {
                if !v.is_empty() {
                    s.push_str(&format!(", {k}: {v}"));
                }
            }
            s
        }
        (Some(T::ServiceDeleted), Some(Notification::ServiceDelete(d))) => format!("id: {}", d.id),
        _ => "UNKNOWN".to_owned(),
    }
}

/// A debug event's source: `ns/pod (ID: n)`, `reserved:x (ID: n)`,
/// `ID: n`, or `N/A`.
pub fn endpoint_short(ep: Option<&Endpoint>) -> String {
    let Some(ep) = ep else {
        return "N/A".to_owned();
    };
    let id = format!("ID: {}", ep.id);
    if !ep.namespace.is_empty() && !ep.pod_name.is_empty() {
        format!("{}/{} ({id})", ep.namespace, ep.pod_name)
    } else if ep.labels.len() == 1 && ep.labels[0].starts_with("reserved:") {
        format!("{} ({id})", ep.labels[0])
    } else {
        id
    }
}

impl<W: Write, E: Write> Printer<W, E> {
    fn node_prefix(&self, node: &str) -> String {
        if self.opts.node_name {
            format!(" [{node}]")
        } else {
            String::new()
        }
    }

    fn dict_separator(&mut self) {
        self.buf.clear();
        if self.line != 0 {
            self.buf.push_str("------------\n");
        }
    }

    fn event_table_header(&mut self, columns: &str) {
        if self.line == 0 {
            let node = if self.opts.node_name { "NODE\t" } else { "" };
            self.tab.write_str(&format!("TIMESTAMP\t{node}{columns}\n"));
        }
    }

    /// Prints one `GetAgentEventsResponse` (nothing when it holds no event).
    pub fn write_agent_event(&mut self, r: &GetAgentEventsResponse) -> io::Result<()> {
        let Some(e) = &r.agent_event else {
            return Ok(());
        };
        let tf = self.opts.time_format;
        let time = fmt_timestamp(tf, r.time.as_ref());
        let ty = enum_name(e.r#type, AgentEventType::as_str_name);
        let details = agent_event_details(e, tf);
        match self.opts.output {
            Output::JsonPb => return self.json_line(r),
            Output::JsonLegacy => return self.json_line(e),
            Output::Compact => {
                self.buf = format!(
                    "{time}{}: {ty} ({details})\n",
                    self.node_prefix(&r.node_name)
                );
                self.emit()?;
            }
            Output::Dict => {
                self.dict_separator();
                self.buf.push_str(&format!("  TIMESTAMP: {time}\n"));
                if self.opts.node_name {
                    self.buf
                        .push_str(&format!("       NODE: {}\n", r.node_name));
                }
                self.buf
                    .push_str(&format!("       TYPE: {ty}\n    DETAILS: {details}\n"));
                self.emit()?;
            }
            Output::Table => {
                self.event_table_header("TYPE\tDETAILS");
                let node = if self.opts.node_name {
                    format!("{}\t", r.node_name)
                } else {
                    String::new()
                };
                let row = format!("{time}\t{node}{ty}\t{details}\n");
                self.tab.write_str(&escape_terminal(&row, false));
            }
        }
        self.line += 1;
        Ok(())
    }

    /// Prints one `GetDebugEventsResponse` (nothing when it holds no event).
    pub fn write_debug_event(&mut self, r: &GetDebugEventsResponse) -> io::Result<()> {
        let Some(e) = &r.debug_event else {
            return Ok(());
        };
        let time = fmt_timestamp(self.opts.time_format, r.time.as_ref());
        let ty = enum_name(e.r#type, DebugEventType::as_str_name);
        let from = endpoint_short(e.source.as_ref());
        let mark = e
            .hash
            .map(|h| format!("0x{:x}", h.value))
            .unwrap_or_default();
        let cpu = e.cpu.map(|c| format!("{:02}", c.value)).unwrap_or_default();
        let msg = &e.message;
        match self.opts.output {
            Output::JsonPb => return self.json_line(r),
            Output::JsonLegacy => return self.json_line(e),
            Output::Compact => {
                self.buf = format!(
                    "{time}{}: {from} {ty} MARK: {mark} CPU: {cpu} ({msg})\n",
                    self.node_prefix(&r.node_name)
                );
                self.emit()?;
            }
            Output::Dict => {
                self.dict_separator();
                self.buf.push_str(&format!("  TIMESTAMP: {time}\n"));
                if self.opts.node_name {
                    self.buf
                        .push_str(&format!("       NODE: {}\n", r.node_name));
                }
                self.buf.push_str(&format!(
                    "       TYPE: {ty}\n       FROM: {from}\n       MARK: {mark}\n        CPU: {cpu}\n    MESSAGE: {msg}\n"
                ));
                self.emit()?;
            }
            Output::Table => {
                self.event_table_header("FROM\tTYPE\tCPU/MARK\tMESSAGE");
                let node = if self.opts.node_name {
                    format!("{}\t", r.node_name)
                } else {
                    String::new()
                };
                let row = format!("{time}\t{node}{from}\t{ty}\t{cpu} {mark}\t{msg}\n");
                self.tab.write_str(&escape_terminal(&row, false));
            }
        }
        self.line += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proto::flow::{EndpointUpdateNotification, IpCacheNotification};
    use proto::wkt::UInt32Value;

    use super::*;

    fn event(ty: AgentEventType, n: Notification) -> AgentEvent {
        AgentEvent {
            r#type: ty as i32,
            notification: Some(n),
        }
    }

    #[test]
    fn agent_event_details_like_upstream() {
        let tf = TimeFormat::StampMilli;
        let e = event(
            AgentEventType::EndpointCreated,
            Notification::EndpointUpdate(EndpointUpdateNotification {
                id: 3,
                labels: vec!["k8s:a=b".into()],
                pod_name: "p".into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
        );
        assert_eq!(
            agent_event_details(&e, tf),
            "id: 3, pod name: p, namespace: ns, labels: [k8s:a=b]"
        );
        let e = event(
            AgentEventType::IpcacheUpserted,
            Notification::IpcacheUpdate(IpCacheNotification {
                cidr: "10.0.0.1/32".into(),
                identity: 9,
                old_identity: Some(UInt32Value { value: 2 }),
                host_ip: "192.168.1.1".into(),
                encrypt_key: 1,
                ..Default::default()
            }),
        );
        assert_eq!(
            agent_event_details(&e, tf),
            "cidr: 10.0.0.1/32, identity: 9, old identity: 2, host ip: 192.168.1.1, encrypt key: 1"
        );
        // A notification that does not match the type.
        let e = event(
            AgentEventType::PolicyUpdated,
            Notification::EndpointUpdate(EndpointUpdateNotification::default()),
        );
        assert_eq!(agent_event_details(&e, tf), "UNKNOWN");
    }

    #[test]
    fn endpoint_short_forms() {
        assert_eq!(endpoint_short(None), "N/A");
        let ep = Endpoint {
            id: 5,
            ..Default::default()
        };
        assert_eq!(endpoint_short(Some(&ep)), "ID: 5");
        assert_eq!(enum_name(99, DebugEventType::as_str_name), "99");
    }
}
