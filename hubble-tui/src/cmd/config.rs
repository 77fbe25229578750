//! `hubble config view|get|set|reset`: the config file's keys are the
//! global and server flag names.

use std::io::Write;

use anyhow::Context as _;
use clap::ArgMatches;
use serde_yaml::Value;

use crate::config::{ConfigFile, parse_bool};
use crate::defaults;
use crate::gotime::parse_duration;
use crate::request::Io;

/// Keys `config set` accepts, with their kind.
const KEYS: &[(&str, Kind)] = &[
    ("basic-auth-password", Kind::String),
    ("basic-auth-username", Kind::String),
    ("debug", Kind::Bool),
    ("kube-context", Kind::String),
    ("kube-namespace", Kind::String),
    ("kubeconfig", Kind::String),
    ("port-forward", Kind::Bool),
    ("port-forward-port", Kind::String),
    ("request-timeout", Kind::Duration),
    ("server", Kind::String),
    ("timeout", Kind::Duration),
    ("tls", Kind::Bool),
    ("tls-allow-insecure", Kind::Bool),
    ("tls-ca-cert-files", Kind::List),
    ("tls-client-cert-file", Kind::String),
    ("tls-client-key-file", Kind::String),
    ("tls-server-name", Kind::String),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    Bool,
    Duration,
    List,
}

fn defaults(key: &str) -> Value {
    match key {
        "server" => Value::String(defaults::SERVER.into()),
        "timeout" => Value::String(defaults::DIAL_TIMEOUT_FLAG.into()),
        "request-timeout" => Value::String(defaults::REQUEST_TIMEOUT_FLAG.into()),
        "kube-namespace" => Value::String("kube-system".into()),
        "port-forward-port" => Value::String("4245".into()),
        "debug" | "tls" | "tls-allow-insecure" | "port-forward" => Value::Bool(false),
        "tls-ca-cert-files" => Value::Sequence(Vec::new()),
        _ => Value::String(String::new()),
    }
}

fn kind(key: &str) -> anyhow::Result<Kind> {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, k)| *k)
        .with_context(|| {
            let names: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            format!(
                "unknown config key {key:?}; known keys: {}",
                names.join(", ")
            )
        })
}

fn effective(file: &ConfigFile, key: &str) -> Value {
    let env = format!("HUBBLE_{}", key.to_ascii_uppercase().replace('-', "_"));
    if let Ok(v) = std::env::var(env) {
        return Value::String(v);
    }
    file.get(key).cloned().unwrap_or_else(|| defaults(key))
}

fn save(file: &ConfigFile) -> anyhow::Result<()> {
    let path = file
        .path
        .clone()
        .context("no config file path: set --config or HOME")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_yaml::to_string(file.mapping())?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs `hubble config …`.
pub fn run(m: &ArgMatches, mut file: ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("view", _)) => {
            let mut map = serde_yaml::Mapping::new();
            for (k, _) in KEYS {
                map.insert(Value::String((*k).into()), effective(&file, k));
            }
            io.out.write_all(serde_yaml::to_string(&map)?.as_bytes())?;
        }
        Some(("get", g)) => {
            let key = g.get_one::<String>("key").map(String::as_str).unwrap_or("");
            kind(key)?;
            match effective(&file, key) {
                Value::String(s) => writeln!(io.out, "{s}")?,
                Value::Bool(b) => writeln!(io.out, "{b}")?,
                Value::Sequence(s) => {
                    let items: Vec<String> = s
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    writeln!(io.out, "[{}]", items.join(","))?
                }
                other => io
                    .out
                    .write_all(serde_yaml::to_string(&other)?.as_bytes())?,
            }
        }
        Some(("set", s)) => {
            let key = s.get_one::<String>("key").map(String::as_str).unwrap_or("");
            let raw = s
                .get_one::<String>("value")
                .map(String::as_str)
                .unwrap_or("");
            let value = match kind(key)? {
                Kind::String => Value::String(raw.into()),
                Kind::Bool => Value::Bool(
                    parse_bool(raw)
                        .with_context(|| format!("invalid boolean {raw:?} for {key}"))?,
                ),
                Kind::Duration => {
                    parse_duration(raw).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
                    Value::String(raw.into())
                }
                Kind::List => Value::Sequence(
                    raw.split(',')
                        .filter(|v| !v.is_empty())
                        .map(|v| Value::String(v.into()))
                        .collect(),
                ),
            };
            file.mapping_mut().insert(Value::String(key.into()), value);
            save(&file)?;
        }
        Some(("reset", r)) => {
            match r.get_one::<String>("key") {
                Some(key) => {
                    kind(key)?;
                    file.mapping_mut().remove(key.as_str());
                }
                None => file.mapping_mut().clear(),
            }
            save(&file)?;
        }
        _ => {}
    }
    Ok(())
}
