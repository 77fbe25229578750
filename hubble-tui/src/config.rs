//! Settings from flags, `HUBBLE_*` environment variables and the config
//! file, with upstream's precedence (flag > environment > file > default).
//!
//! The config file is YAML with the global and server flag names as keys
//! (`server: tls://relay:443`, `tls-ca-cert-files: [...]`, `debug: true`),
//! plus `allowlist`/`denylist` for `observe`. It is `--config` /
//! `HUBBLE_CONFIG`, by default `$XDG_CONFIG_HOME/hubble/config.yaml`
//! (`~/.config/hubble/config.yaml`), or `~/.hubble/config.yaml` when no
//! config directory can be found. A missing default file is not an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde_yaml::Value;

use crate::defaults;
use crate::gotime::parse_duration;

/// The default config file path.
pub fn default_config_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let config_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| Path::new(h).join(".config")));
    match config_dir {
        Some(d) => Some(d.join("hubble").join("config.yaml")),
        None => home.map(|h| Path::new(&h).join(".hubble").join("config.yaml")),
    }
}

/// The loaded config file (empty when there is none).
#[derive(Debug, Default, Clone)]
pub struct ConfigFile {
    /// Where it was read from.
    pub path: Option<PathBuf>,
    values: serde_yaml::Mapping,
}

impl ConfigFile {
    /// Reads `path`; a missing file yields an empty config, a malformed
    /// one is an error.
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile {
                    path: Some(path.to_owned()),
                    values: Default::default(),
                });
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading config file {}", path.display()));
            }
        };
        let values = if text.trim().is_empty() {
            Default::default()
        } else {
            match serde_yaml::from_str::<Value>(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?
            {
                Value::Mapping(m) => m,
                Value::Null => Default::default(),
                _ => anyhow::bail!("config file {}: expected a YAML mapping", path.display()),
            }
        };
        Ok(ConfigFile {
            path: Some(path.to_owned()),
            values,
        })
    }

    /// A value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// All keys and values, for `config view`.
    pub fn mapping(&self) -> &serde_yaml::Mapping {
        &self.values
    }

    /// Mutable access, for `config set`/`reset`.
    pub fn mapping_mut(&mut self) -> &mut serde_yaml::Mapping {
        &mut self.values
    }
}

/// `HUBBLE_COMPAT=legacy-json-output`: `-o json` prints bare flows.
pub fn compat_legacy_json_output() -> bool {
    std::env::var("HUBBLE_COMPAT")
        .map(|v| {
            v.split(',')
                .any(|o| o.eq_ignore_ascii_case("legacy-json-output"))
        })
        .unwrap_or(false)
}

/// Resolves settings for one command: flag or env (through clap), else the
/// config file, else clap's default.
#[derive(Debug)]
pub struct Settings<'a> {
    matches: &'a ArgMatches,
    file: &'a ConfigFile,
}

fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// viper/cast's boolean strings.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => Some(false),
        _ => None,
    }
}

impl<'a> Settings<'a> {
    /// Settings over these matches and this file.
    pub fn new(matches: &'a ArgMatches, file: &'a ConfigFile) -> Self {
        Settings { matches, file }
    }

    fn explicit(&self, key: &str) -> bool {
        matches!(
            self.matches.value_source(key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }

    /// A string setting.
    pub fn string(&self, key: &str) -> String {
        if !self.explicit(key)
            && let Some(v) = self.file.get(key).and_then(value_to_string)
        {
            return v;
        }
        self.matches
            .get_one::<String>(key)
            .cloned()
            .unwrap_or_default()
    }

    /// A boolean setting (flags are `SetTrue` with an env fallback).
    pub fn bool(&self, key: &str) -> anyhow::Result<bool> {
        if !self.explicit(key)
            && let Some(v) = self.file.get(key)
        {
            return match v {
                Value::Bool(b) => Ok(*b),
                other => value_to_string(other)
                    .and_then(|s| parse_bool(&s))
                    .with_context(|| format!("config key {key}: not a boolean")),
            };
        }
        Ok(self.matches.get_flag(key))
    }

    /// A duration setting (`5s`, or nanoseconds as a number in the file).
    pub fn duration(&self, key: &str) -> anyhow::Result<Duration> {
        let raw = if !self.explicit(key)
            && let Some(v) = self.file.get(key)
        {
            match v {
                Value::Number(n) => return Ok(Duration::from_nanos(n.as_u64().unwrap_or(0))),
                other => value_to_string(other).unwrap_or_default(),
            }
        } else {
            self.matches
                .get_one::<String>(key)
                .cloned()
                .unwrap_or_default()
        };
        let n = parse_duration(&raw)
            .map_err(|e| anyhow::anyhow!("invalid argument {raw:?} for \"--{key}\" flag: {e}"))?;
        Ok(Duration::from_nanos(n.max(0) as u64))
    }

    /// A list setting: repeated/comma-separated flags, a whitespace-separated
    /// env value, or a YAML list.
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.matches.value_source(key) {
            Some(ValueSource::CommandLine) => self
                .matches
                .get_many::<String>(key)
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            Some(ValueSource::EnvVariable) => self
                .matches
                .get_many::<String>(key)
                .map(|v| {
                    v.flat_map(|s| s.split_whitespace().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            _ => match self.file.get(key) {
                Some(Value::Sequence(seq)) => seq.iter().filter_map(value_to_string).collect(),
                Some(v) => value_to_string(v)
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
                None => Vec::new(),
            },
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--server`, possibly with `tls://` or `unix://`.
    pub server: String,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--request-timeout`.
    pub request_timeout: Duration,
    /// `--tls`.
    pub tls: bool,
    /// `--tls-allow-insecure`.
    pub tls_allow_insecure: bool,
    /// `--tls-ca-cert-files`.
    pub tls_ca_cert_files: Vec<String>,
    /// `--tls-client-cert-file`.
    pub tls_client_cert_file: String,
    /// `--tls-client-key-file`.
    pub tls_client_key_file: String,
    /// `--tls-server-name`.
    pub tls_server_name: String,
    /// `--basic-auth-username`.
    pub basic_auth_username: String,
    /// `--basic-auth-password`.
    pub basic_auth_password: String,
    /// `-P/--port-forward`.
    pub port_forward: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            server: defaults::SERVER.to_owned(),
            timeout: defaults::DIAL_TIMEOUT,
            request_timeout: defaults::REQUEST_TIMEOUT,
            tls: false,
            tls_allow_insecure: false,
            tls_ca_cert_files: Vec::new(),
            tls_client_cert_file: String::new(),
            tls_client_key_file: String::new(),
            tls_server_name: String::new(),
            basic_auth_username: String::new(),
            basic_auth_password: String::new(),
            port_forward: false,
        }
    }
}

impl ServerOptions {
    /// Reads and validates the server settings (upstream's
    /// `validateMutualTLSFlags`).
    pub fn from_settings(s: &Settings<'_>) -> anyhow::Result<ServerOptions> {
        let o = ServerOptions {
            server: s.string("server"),
            timeout: s.duration("timeout")?,
            request_timeout: s.duration("request-timeout")?,
            tls: s.bool("tls")?,
            tls_allow_insecure: s.bool("tls-allow-insecure")?,
            tls_ca_cert_files: s
                .list("tls-ca-cert-files")
                .into_iter()
                .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
                .filter(|v| !v.is_empty())
                .collect(),
            tls_client_cert_file: s.string("tls-client-cert-file"),
            tls_client_key_file: s.string("tls-client-key-file"),
            tls_server_name: s.string("tls-server-name"),
            basic_auth_username: s.string("basic-auth-username"),
            basic_auth_password: s.string("basic-auth-password"),
            port_forward: s.bool("port-forward")?,
        };
        let key = !o.tls_client_key_file.is_empty();
        let cert = !o.tls_client_cert_file.is_empty();
        if key != cert {
            anyhow::bail!(
                "certificate and private key are both required, but only one was provided"
            );
        }
        if key && cert && !o.use_tls() {
            anyhow::bail!("transport layer security required");
        }
        Ok(o)
    }

    /// Whether TLS is on (`--tls` or a `tls://` address).
    pub fn use_tls(&self) -> bool {
        self.tls || self.server.starts_with(defaults::TLS_PREFIX)
    }

    /// The address without the `tls://` prefix (what upstream prints as the
    /// connection target).
    pub fn target(&self) -> &str {
        self.server
            .strip_prefix(defaults::TLS_PREFIX)
            .unwrap_or(&self.server)
    }
}
