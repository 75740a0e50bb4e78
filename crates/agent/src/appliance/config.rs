//! The appliance configuration: `xenlift.*` options on the kernel command
//! line and keys of a TOML answer file, merged into one `ApplianceConfig`
//! and turned into the agent's own command-line arguments.
//!
//! Options mirror the CLI by construction: every key that is not one of the
//! appliance's own (`run`, `post`, `config`, `disks`, `log`) becomes
//! `--KEY VALUE` of the command that runs, and the result is checked by the
//! very clap parser `xenlift` uses. A new `convert` flag is therefore an
//! appliance option the day it exists, with nothing to add here.

use std::collections::BTreeMap;
use std::fmt;

/// What the appliance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Inspect,
    Convert,
    /// Nothing configured: ask the operator at the console.
    Interactive,
}

impl Action {
    fn parse(value: &str) -> Result<Action, ConfigError> {
        match value {
            "inspect" => Ok(Action::Inspect),
            "convert" => Ok(Action::Convert),
            "interactive" => Ok(Action::Interactive),
            other => Err(ConfigError::BadValue {
                key: "run".into(),
                value: other.into(),
                expected: "inspect, convert or interactive",
            }),
        }
    }

    pub fn subcommand(self) -> &'static str {
        match self {
            Action::Inspect => "inspect",
            Action::Convert => "convert",
            Action::Interactive => "interactive",
        }
    }
}

/// How the appliance ends once the agent is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    PowerOff,
    Reboot,
    Shell,
}

impl Post {
    fn parse(value: &str) -> Result<Post, ConfigError> {
        match value {
            "poweroff" => Ok(Post::PowerOff),
            "reboot" => Ok(Post::Reboot),
            "shell" => Ok(Post::Shell),
            other => Err(ConfigError::BadValue {
                key: "post".into(),
                value: other.into(),
                expected: "poweroff, reboot or shell",
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Post::PowerOff => "poweroff",
            Post::Reboot => "reboot",
            Post::Shell => "shell",
        }
    }
}

/// The value of a pass-through option.
#[derive(Clone, PartialEq, Eq)]
pub enum OptValue {
    /// `--name` (true) or nothing (false).
    Flag(bool),
    One(String),
    /// `--name a --name b`.
    Many(Vec<String>),
}

impl fmt::Debug for OptValue {
    // Values may be secrets; Debug output must never show them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptValue::Flag(b) => write!(f, "Flag({b})"),
            OptValue::One(_) => write!(f, "One(..)"),
            OptValue::Many(v) => write!(f, "Many({} values)", v.len()),
        }
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    AnswerFile,
}

/// One merged configuration. `None`/empty means "not set here", so that
/// layers can be merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplianceConfig {
    pub run: Option<Action>,
    pub post: Option<Post>,
    /// `config`: URL of an answer file to fetch (`${mac}` allowed).
    pub config_url: Option<String>,
    pub disks: Vec<String>,
    pub log: Option<String>,
    /// Everything else, as `--name` of the command that runs.
    pub options: BTreeMap<String, OptValue>,
}

/// Configuration mistakes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{key}={value:?} is not valid: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "xenlift.{0} on the kernel command line would print a secret on every console; \
         put `{0} = \"...\"` in an answer file instead"
    )]
    SecretOnCommandLine(String),
    #[error("answer file is not valid TOML: {0}")]
    Toml(String),
    #[error("answer file key {key:?}: {problem}")]
    BadKey { key: String, problem: &'static str },
}

const OWN_KEYS: [&str; 5] = ["run", "post", "config", "disks", "log"];

/// Whether a key holds a secret: its value is never printed.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|s| k.contains(s))
}

/// `allow_plaintext` and `allow-plaintext` are one option: `allow-plaintext`.
fn normalize_key(key: &str) -> String {
    key.trim().replace('_', "-")
}

impl ApplianceConfig {
    /// The `xenlift.*` words of a kernel command line. For the appliance's
    /// own keys later words win, as in the kernel; other options repeat.
    pub fn from_cmdline(line: &str) -> Result<ApplianceConfig, ConfigError> {
        let mut cfg = ApplianceConfig::default();
        for (name, value) in cmdline_words(line) {
            let Some(key) = name.strip_prefix("xenlift.") else {
                continue;
            };
            let key = normalize_key(key);
            if is_init_key(&key) {
                continue;
            }
            if is_secret(&key) {
                return Err(ConfigError::SecretOnCommandLine(key));
            }
            match value {
                None => cfg.set_flag(&key, true, Source::CommandLine)?,
                Some(v) => cfg.set_text(&key, &v, Source::CommandLine)?,
            }
        }
        Ok(cfg)
    }

    /// A TOML answer file: the same keys at the top level.
    pub fn from_toml(text: &str) -> Result<ApplianceConfig, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.message().to_string()))?;
        let mut cfg = ApplianceConfig::default();
        for (raw_key, value) in table {
            let key = normalize_key(&raw_key);
            if is_init_key(&key) {
                return Err(ConfigError::BadKey {
                    key,
                    problem:
                        "is read by init before any answer file: set it on the kernel command line",
                });
            }
            match value {
                toml::Value::String(s) => cfg.set_text(&key, &s, Source::AnswerFile)?,
                toml::Value::Boolean(b) => cfg.set_flag(&key, b, Source::AnswerFile)?,
                toml::Value::Integer(i) => {
                    cfg.set_text(&key, &i.to_string(), Source::AnswerFile)?
                }
                toml::Value::Float(f) => cfg.set_text(&key, &f.to_string(), Source::AnswerFile)?,
                toml::Value::Array(items) => {
                    let mut list = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(s) => list.push(s),
                            toml::Value::Integer(i) => list.push(i.to_string()),
                            _ => {
                                return Err(ConfigError::BadKey {
                                    key,
                                    problem: "lists may hold only strings and numbers",
                                })
                            }
                        }
                    }
                    if key == "disks" {
                        cfg.disks = list;
                    } else if OWN_KEYS.contains(&key.as_str()) {
                        return Err(ConfigError::BadKey {
                            key,
                            problem: "takes one value, not a list",
                        });
                    } else {
                        cfg.options.insert(key, OptValue::Many(list));
                    }
                }
                toml::Value::Table(_) => {
                    return Err(ConfigError::BadKey {
                        key,
                        problem: "tables are not used: write every key at the top level",
                    })
                }
                toml::Value::Datetime(_) => {
                    return Err(ConfigError::BadKey {
                        key,
                        problem: "dates are not used: quote the value",
                    })
                }
            }
        }
        Ok(cfg)
    }

    fn set_flag(&mut self, key: &str, on: bool, source: Source) -> Result<(), ConfigError> {
        if OWN_KEYS.contains(&key) {
            let shown = if source == Source::CommandLine {
                format!("xenlift.{key}")
            } else {
                key.to_string()
            };
            return Err(ConfigError::BadValue {
                key: shown,
                value: on.to_string(),
                expected: "a value (KEY=VALUE)",
            });
        }
        self.options.insert(key.to_string(), OptValue::Flag(on));
        Ok(())
    }

    fn set_text(&mut self, key: &str, value: &str, source: Source) -> Result<(), ConfigError> {
        match key {
            "run" => self.run = Some(Action::parse(value)?),
            "post" => self.post = Some(Post::parse(value)?),
            "config" => self.config_url = Some(value.to_string()),
            "log" => self.log = Some(value.to_string()),
            "disks" => {
                self.disks = value
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            _ if source == Source::CommandLine => {
                // A repeated option repeats the flag, as on the CLI
                // (`xenlift.network=a xenlift.network=b`).
                let value = value.to_string();
                let next = match self.options.remove(key) {
                    Some(OptValue::One(first)) => OptValue::Many(vec![first, value]),
                    Some(OptValue::Many(mut all)) => {
                        all.push(value);
                        OptValue::Many(all)
                    }
                    _ => OptValue::One(value),
                };
                self.options.insert(key.to_string(), next);
            }
            _ => {
                self.options
                    .insert(key.to_string(), OptValue::One(value.to_string()));
            }
        }
        Ok(())
    }

    /// `other` on top of `self`: what `other` sets wins.
    pub fn merged(mut self, other: ApplianceConfig) -> ApplianceConfig {
        self.run = other.run.or(self.run);
        self.post = other.post.or(self.post);
        self.config_url = other.config_url.or(self.config_url);
        self.log = other.log.or(self.log);
        if !other.disks.is_empty() {
            self.disks = other.disks;
        }
        self.options.extend(other.options);
        self
    }

    /// What to run: explicit `run`, else convert when a target is set,
    /// else interactive.
    pub fn action(&self) -> Action {
        self.run.unwrap_or(if self.options.contains_key("to") {
            Action::Convert
        } else {
            Action::Interactive
        })
    }

    /// The agent's arguments (after the program name) for `action` on
    /// `disks`, in a fixed order.
    pub fn to_args(&self, action: Action, disks: &[String]) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(log) = &self.log {
            args.extend(["--log".to_string(), log.clone()]);
        }
        args.push(action.subcommand().to_string());
        for (name, value) in &self.options {
            match value {
                OptValue::Flag(true) => args.push(format!("--{name}")),
                OptValue::Flag(false) => {}
                OptValue::One(v) => args.extend([format!("--{name}"), v.clone()]),
                OptValue::Many(vs) => {
                    for v in vs {
                        args.extend([format!("--{name}"), v.clone()]);
                    }
                }
            }
        }
        if !disks.is_empty() {
            args.push("--".into());
            args.extend(disks.iter().cloned());
        }
        args
    }
}

/// `args` with secret values replaced, for the console.
pub fn redacted(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("********".to_string());
            hide_next = false;
            continue;
        }
        hide_next = a.starts_with("--") && is_secret(a);
        out.push(a.clone());
    }
    out.join(" ")
}

/// Options that init reads (see crates/init/src/cmdline.rs).
fn is_init_key(key: &str) -> bool {
    matches!(key, "wait" | "modules" | "debug")
}

/// The kernel's word splitting: whitespace separates, double quotes group.
fn cmdline_words(line: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars().chain(std::iter::once(' ')) {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    if word == "--" {
                        break;
                    }
                    out.push(match word.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (word.clone(), None),
                    });
                    word.clear();
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    out
}
