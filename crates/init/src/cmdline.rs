//! The kernel command line, as init reads it: its own `xenlift.*` options
//! (how to end, how long to wait, extra modules), `ip=` and `BOOTIF=`.
//! Every other `xenlift.*` option belongs to the agent, which reads the same
//! line (see the agent's `appliance` module). Parsing takes a path so tests
//! feed it temporary files; bad values become warnings, never a failure:
//! PID 1 must come up whatever was typed at the boot prompt.

use std::path::Path;
use std::time::Duration;

use crate::net::ipconf::{self, NetConfig};

/// How the appliance ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    PowerOff,
    Reboot,
    Shell,
}

impl Post {
    pub fn parse(value: &str) -> Option<Post> {
        match value.trim() {
            "poweroff" => Some(Post::PowerOff),
            "reboot" => Some(Post::Reboot),
            "shell" => Some(Post::Shell),
            _ => None,
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

/// What init takes from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitConfig {
    /// `xenlift.post=`: the end when the agent did not say otherwise.
    pub post: Post,
    /// `ip=`: DHCP on every link by default.
    pub net: NetConfig,
    /// `BOOTIF=01-aa-bb-cc-dd-ee-ff` (pxelinux): the link to prefer.
    pub bootif: Option<[u8; 6]>,
    /// `xenlift.wait=SECONDS`: how long to wait for disks and links.
    pub wait: Duration,
    /// `xenlift.modules=a,b`: modules to load whatever the hardware.
    pub modules: Vec<String>,
    /// `xenlift.debug`: say every module and uevent.
    pub debug: bool,
    /// Problems found while parsing, for the console.
    pub warnings: Vec<String>,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig {
            post: Post::Shell,
            net: NetConfig::Dhcp { device: None },
            bootif: None,
            wait: Duration::from_secs(30),
            modules: Vec::new(),
            debug: false,
            warnings: Vec::new(),
        }
    }
}

/// Reads and parses the command line at `path` (normally /proc/cmdline).
pub fn read(path: &Path) -> std::io::Result<InitConfig> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text))
}

/// Splits a command line into `name[=value]` words as the kernel does:
/// whitespace separates, double quotes group and are removed, and words
/// after a lone `--` belong to init's argv, not to us.
pub fn words(line: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_quotes = false;
    let mut started = false;
    for c in line.chars().chain(std::iter::once(' ')) {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    if word == "--" {
                        return out;
                    }
                    out.push(split_word(&word));
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

fn split_word(word: &str) -> (String, Option<String>) {
    match word.split_once('=') {
        Some((name, value)) => (name.to_string(), Some(value.to_string())),
        None => (word.to_string(), None),
    }
}

/// Parses a command line; later words win, like the kernel's.
pub fn parse(line: &str) -> InitConfig {
    let mut cfg = InitConfig::default();
    for (name, value) in words(line) {
        let value_or_empty = value.clone().unwrap_or_default();
        match name.as_str() {
            "xenlift.post" => match Post::parse(&value_or_empty) {
                Some(p) => cfg.post = p,
                None => cfg.warnings.push(format!(
                    "xenlift.post={value_or_empty} is not poweroff, reboot or shell; keeping {}",
                    cfg.post.name()
                )),
            },
            "xenlift.wait" => match value_or_empty.parse::<u64>() {
                Ok(s) => cfg.wait = Duration::from_secs(s),
                Err(_) => cfg.warnings.push(format!(
                    "xenlift.wait={value_or_empty} is not a number of seconds; keeping {}",
                    cfg.wait.as_secs()
                )),
            },
            "xenlift.modules" => cfg.modules.extend(
                value_or_empty
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
            ),
            "xenlift.debug" => cfg.debug = value.as_deref() != Some("0"),
            "ip" => match ipconf::parse(&value_or_empty) {
                Ok(net) => cfg.net = net,
                Err(e) => cfg.warnings.push(format!(
                    "ip={value_or_empty}: {e}; using DHCP on every link"
                )),
            },
            "BOOTIF" => match parse_bootif(&value_or_empty) {
                Some(mac) => cfg.bootif = Some(mac),
                None => cfg.warnings.push(format!(
                    "BOOTIF={value_or_empty} is not 01-xx-xx-xx-xx-xx-xx; ignored"
                )),
            },
            _ => {}
        }
    }
    cfg
}

/// `01-aa-bb-cc-dd-ee-ff` (hardware type 1, Ethernet) or a bare MAC.
fn parse_bootif(value: &str) -> Option<[u8; 6]> {
    let hex = value.strip_prefix("01-").unwrap_or(value);
    crate::net::parse_mac(&hex.replace('-', ":"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    type WordsRow<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

    #[test]
    fn words_follow_the_kernel_rules() {
        let rows: &[WordsRow] = &[
            ("", &[]),
            ("quiet", &[("quiet", None)]),
            (
                "a=1  b=\"x y\" c",
                &[("a", Some("1")), ("b", Some("x y")), ("c", None)],
            ),
            ("\"d=1 2\" e=", &[("d", Some("1 2")), ("e", Some(""))]),
            ("f=a=b -- g=1", &[("f", Some("a=b"))]),
            ("h=\"\"", &[("h", Some(""))]),
        ];
        for (i, (line, want)) in rows.iter().enumerate() {
            let got = words(line);
            let want: Vec<(String, Option<String>)> = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect();
            assert_eq!(got, want, "row {i}: {line:?}");
        }
    }

    #[test]
    fn init_options_and_their_mistakes() {
        struct Row {
            line: &'static str,
            check: fn(&InitConfig) -> bool,
            warnings: usize,
        }
        let rows = [
            Row {
                line: "console=ttyS0",
                check: |c| c.post == Post::Shell && c.net == NetConfig::Dhcp { device: None },
                warnings: 0,
            },
            Row {
                line: "xenlift.post=poweroff xenlift.post=reboot",
                check: |c| c.post == Post::Reboot,
                warnings: 0,
            },
            Row {
                line: "xenlift.post=explode",
                check: |c| c.post == Post::Shell,
                warnings: 1,
            },
            Row {
                line: "xenlift.wait=5 xenlift.modules=isofs,,loop xenlift.debug",
                check: |c| {
                    c.wait == Duration::from_secs(5) && c.modules == ["isofs", "loop"] && c.debug
                },
                warnings: 0,
            },
            Row {
                line: "xenlift.wait=soon",
                check: |c| c.wait == Duration::from_secs(30),
                warnings: 1,
            },
            Row {
                line: "ip=off",
                check: |c| c.net == NetConfig::Off,
                warnings: 0,
            },
            Row {
                line: "ip=10.0.0.5::10.0.0.1:255.255.255.0:srv:eth0:none:10.0.0.53",
                check: |c| match &c.net {
                    NetConfig::Static(s) => {
                        s.address == Ipv4Addr::new(10, 0, 0, 5)
                            && s.prefix == 24
                            && s.gateway == Some(Ipv4Addr::new(10, 0, 0, 1))
                            && s.device.as_deref() == Some("eth0")
                            && s.dns == [Ipv4Addr::new(10, 0, 0, 53)]
                    }
                    _ => false,
                },
                warnings: 0,
            },
            Row {
                line: "ip=10.0.0.5",
                check: |c| c.net == NetConfig::Dhcp { device: None },
                warnings: 1,
            },
            Row {
                line: "BOOTIF=01-52-54-00-12-34-56",
                check: |c| c.bootif == Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                warnings: 0,
            },
            Row {
                line: "BOOTIF=zz",
                check: |c| c.bootif.is_none(),
                warnings: 1,
            },
        ];
        for (i, row) in rows.iter().enumerate() {
            let cfg = parse(row.line);
            assert!((row.check)(&cfg), "row {i}: {:?} gave {cfg:?}", row.line);
            assert_eq!(
                cfg.warnings.len(),
                row.warnings,
                "row {i}: {:?} warnings {:?}",
                row.line,
                cfg.warnings
            );
        }
    }

    #[test]
    fn read_takes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmdline");
        std::fs::write(&path, "xenlift.post=poweroff ip=dhcp\n").unwrap();
        let cfg = read(&path).unwrap();
        assert_eq!(cfg.post, Post::PowerOff);
    }
}
