//! The interactive dialog: plain numbered questions on a line-oriented
//! console (a serial line works), ending in the `xenlift convert` arguments
//! the operator agreed to. What it asks about the target goes through
//! [`Pool`]; what it knows of this machine comes in as [`Facts`]. It runs
//! nothing itself: the caller runs the arguments, as for an answer file.

use std::fmt;
use std::io::{self, BufRead, Write};

use crate::units::human;
use xapi::Secret;

/// A storage repository offered for the disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sr {
    pub uuid: String,
    pub name: String,
    pub kind: String,
    pub free: u64,
    pub is_default: bool,
}

/// A network offered for a network card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    pub uuid: String,
    pub name: String,
    pub bridge: String,
}

/// A network card of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub mac: String,
}

/// A local disk that could be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDisk {
    pub path: String,
    pub size: u64,
    /// What `inspect` found on it, in a few words.
    pub summary: String,
}

/// This machine, as the dialog shows it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub nics: Vec<Nic>,
    pub disks: Vec<LocalDisk>,
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user name or password: worth asking again.
    Rejected,
    /// Anything else (network, TLS, protocol): the message.
    Other(String),
}

/// The target pool, as far as the dialog needs it.
pub trait Pool {
    /// The SHA-256 fingerprint (`AB:CD:...`) of the certificate `host:port` presents.
    fn fingerprint(&mut self, host: &str, port: u16) -> Result<String, String>;
    /// Logs in, trusting only `fingerprint`.
    fn login(
        &mut self,
        url: &str,
        fingerprint: &str,
        user: &str,
        password: &Secret,
    ) -> Result<(), LoginError>;
    /// SRs that can hold VM disks.
    fn storage(&mut self) -> Result<Vec<Sr>, String>;
    /// Networks a VM can join.
    fn networks(&mut self) -> Result<Vec<Net>, String>;
}

/// The `xenlift convert` arguments (after the program name). Holds the
/// password: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConvertArgv(pub Vec<String>);

impl fmt::Debug for ConvertArgv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConvertArgv({})", super::config::redacted(&self.0))
    }
}

/// How the dialog ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Convert(ConvertArgv),
    /// The operator said no at the plan; nothing was created.
    Cancelled,
}

/// Dialog failures (the console went away, nothing to convert).
#[derive(Debug, thiserror::Error)]
pub enum DialogError {
    #[error("the console input ended before the dialog was finished; nothing was converted")]
    InputEnded,
    #[error("console: {0}")]
    Io(#[from] io::Error),
    #[error("no disks found on this machine (is the storage controller's driver in the appliance? see the modules list at boot); nothing to convert")]
    NoDisks,
    #[error("the pool offers no {0}; nothing was converted (add one in XenCenter or with xe, then boot the appliance again)")]
    PoolLacks(&'static str),
}

/// Turns terminal echo off (false) and on again (true) around a password.
pub type EchoControl = Box<dyn FnMut(bool)>;

/// The question-and-answer end of the console.
pub struct Console<R, W> {
    input: R,
    out: W,
    echo: Option<EchoControl>,
}

impl<R: BufRead, W: Write> Console<R, W> {
    pub fn new(input: R, out: W) -> Self {
        Console {
            input,
            out,
            echo: None,
        }
    }

    /// Hides typed passwords through `echo` (a terminal's echo flag).
    pub fn with_echo_control(mut self, echo: EchoControl) -> Self {
        self.echo = Some(echo);
        self
    }

    pub fn say(&mut self, text: &str) -> Result<(), DialogError> {
        writeln!(self.out, "{text}")?;
        self.out.flush()?;
        Ok(())
    }

    /// One answer line, trimmed.
    fn ask(&mut self, prompt: &str) -> Result<String, DialogError> {
        write!(self.out, "{prompt}")?;
        self.out.flush()?;
        self.read_line()
    }

    fn read_line(&mut self) -> Result<String, DialogError> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(DialogError::InputEnded);
        }
        Ok(line.trim_end_matches(['\r', '\n']).trim().to_string())
    }

    /// An answer, or `default` for an empty line.
    fn ask_default(&mut self, prompt: &str, default: &str) -> Result<String, DialogError> {
        let answer = self.ask(&format!("{prompt} [{default}]: "))?;
        Ok(if answer.is_empty() {
            default.to_string()
        } else {
            answer
        })
    }

    /// A password: not echoed when echo control is set, never trimmed
    /// beyond the line end.
    fn ask_secret(&mut self, prompt: &str) -> Result<Secret, DialogError> {
        // Echo off before the prompt shows: a quick typist never races it.
        if let Some(echo) = self.echo.as_mut() {
            echo(false);
        }
        write!(self.out, "{prompt}")?;
        self.out.flush()?;
        let mut line = String::new();
        let read = self.input.read_line(&mut line);
        if let Some(echo) = self.echo.as_mut() {
            echo(true);
            // The Enter that ended the password was not echoed either.
            writeln!(self.out)?;
        }
        if read? == 0 {
            return Err(DialogError::InputEnded);
        }
        Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
    }

    fn yes_no(&mut self, prompt: &str) -> Result<bool, DialogError> {
        loop {
            match self
                .ask(&format!("{prompt} [y/n]: "))?
                .to_ascii_lowercase()
                .as_str()
            {
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => self.say("please answer y or n")?,
            }
        }
    }

    /// A number from 1 to `count`; `default` (1-based) for an empty line.
    fn choose(&mut self, prompt: &str, count: usize, default: usize) -> Result<usize, DialogError> {
        loop {
            let answer = self.ask(&format!("{prompt} [{default}]: "))?;
            if answer.is_empty() {
                return Ok(default);
            }
            match answer.parse::<usize>() {
                Ok(n) if (1..=count).contains(&n) => return Ok(n),
                _ => self.say(&format!("please enter a number from 1 to {count}"))?,
            }
        }
    }

    /// Numbers from 1 to `count` (spaces or commas between), or all for
    /// an empty line; sorted, without repeats.
    fn choose_many(&mut self, prompt: &str, count: usize) -> Result<Vec<usize>, DialogError> {
        'ask: loop {
            let answer = self.ask(&format!("{prompt} [all]: "))?;
            if answer.is_empty() || answer.eq_ignore_ascii_case("all") {
                return Ok((1..=count).collect());
            }
            let mut picked = Vec::new();
            for word in answer.split([' ', ',']).filter(|w| !w.is_empty()) {
                match word.parse::<usize>() {
                    Ok(n) if (1..=count).contains(&n) => picked.push(n),
                    _ => {
                        self.say(&format!(
                            "{word:?} is not a disk number: enter numbers from 1 to {count}, e.g. 1 2"
                        ))?;
                        continue 'ask;
                    }
                }
            }
            picked.sort_unstable();
            picked.dedup();
            return Ok(picked);
        }
    }
}

/// A target address as typed: `HOST`, `HOST:PORT` or `https://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub port: u16,
}

pub fn parse_target(text: &str) -> Result<Target, String> {
    let text = text.trim();
    if text.starts_with("http://") {
        return Err(
            "plain http:// would send the password in clear: enter https://HOST or just HOST"
                .into(),
        );
    }
    let rest = text.strip_prefix("https://").unwrap_or(text);
    if rest.contains("://") {
        return Err(format!("{text:?}: only https:// addresses are used"));
    }
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return Err(format!(
            "{text:?} is not a host address: enter HOST, HOST:PORT or https://HOST[:PORT]"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        // [IPv6]:PORT
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{text:?}: missing ] after the IPv6 address"))?;
            (addr.to_string(), after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            Some(_) => {
                return Err(format!(
                    "{text:?}: write an IPv6 address in brackets, e.g. https://[fd00::1]"
                ))
            }
            None => (authority.to_string(), None),
        },
    };
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{text:?}: the port must be a number from 1 to 65535"))?,
    };
    let shown_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let url = if port == 443 {
        format!("https://{shown_host}")
    } else {
        format!("https://{shown_host}:{port}")
    };
    Ok(Target { url, host, port })
}

/// What was settled with the pool: address, trust and login.
struct Login {
    target: Target,
    fingerprint: String,
    user: String,
    password: Secret,
}

/// Runs the whole dialog.
pub fn run<R: BufRead, W: Write>(
    console: &mut Console<R, W>,
    pool: &mut dyn Pool,
    facts: &Facts,
) -> Result<Outcome, DialogError> {
    if facts.disks.is_empty() {
        return Err(DialogError::NoDisks);
    }
    console.say("xenlift: interactive setup. Answer each question; Enter takes the [default].")?;
    let login = log_in(console, pool)?;

    let srs = pool
        .storage()
        .map_err(|e| io::Error::other(format!("listing the storage repositories: {e}")))?;
    if srs.is_empty() {
        return Err(DialogError::PoolLacks("storage repository for VM disks"));
    }
    console.say("Storage repositories:")?;
    for (i, sr) in srs.iter().enumerate() {
        console.say(&format!(
            "  {}) {} ({}, {} free){}",
            i + 1,
            sr.name,
            sr.kind,
            human(sr.free),
            if sr.is_default { " [pool default]" } else { "" }
        ))?;
    }
    let default_sr = srs.iter().position(|s| s.is_default).unwrap_or(0) + 1;
    let sr = &srs[console.choose("Storage repository for the disks", srs.len(), default_sr)? - 1];

    let mut mapping = Vec::new();
    if !facts.nics.is_empty() {
        let nets = pool
            .networks()
            .map_err(|e| io::Error::other(format!("listing the networks: {e}")))?;
        if nets.is_empty() {
            return Err(DialogError::PoolLacks("network"));
        }
        console.say("Networks:")?;
        for (i, n) in nets.iter().enumerate() {
            console.say(&format!("  {}) {} ({})", i + 1, n.name, n.bridge))?;
        }
        for nic in &facts.nics {
            let n = console.choose(
                &format!("Network for {} ({})", nic.name, nic.mac),
                nets.len(),
                1,
            )?;
            mapping.push((nic.clone(), nets[n - 1].clone()));
        }
    }

    console.say("Local disks:")?;
    for (i, d) in facts.disks.iter().enumerate() {
        console.say(&format!(
            "  {}) {}  {}  {}",
            i + 1,
            d.path,
            human(d.size),
            d.summary
        ))?;
    }
    let disks: Vec<&LocalDisk> = console
        .choose_many(
            "Disks to convert (numbers, e.g. 1 2; all for all)",
            facts.disks.len(),
        )?
        .into_iter()
        .map(|n| &facts.disks[n - 1])
        .collect();
    let name = console.ask("VM name (Enter: from the source's hostname): ")?;

    console.say("Plan:")?;
    console.say(&format!("  target   {}", login.target.url))?;
    console.say(&format!("  trusted  certificate {}", login.fingerprint))?;
    console.say(&format!("  user     {}", login.user))?;
    console.say(&format!("  SR       {} ({})", sr.name, sr.uuid))?;
    for (nic, net) in &mapping {
        console.say(&format!(
            "  network  {} ({}) -> {} ({})",
            nic.name, nic.mac, net.name, net.uuid
        ))?;
    }
    for d in &disks {
        console.say(&format!("  disk     {} ({})", d.path, human(d.size)))?;
    }
    console.say(&format!(
        "  VM name  {}",
        if name.is_empty() {
            "from the source"
        } else {
            name.as_str()
        }
    ))?;
    if !console.yes_no("Start the conversion? The local disks are only read")? {
        console.say("cancelled: nothing was created on the pool")?;
        return Ok(Outcome::Cancelled);
    }

    let mut argv: Vec<String> = [
        "convert",
        "--to",
        login.target.url.as_str(),
        "--fingerprint",
        login.fingerprint.as_str(),
        "--username",
        login.user.as_str(),
        "--password",
        login.password.expose(),
        "--sr",
        sr.uuid.as_str(),
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    for (nic, net) in &mapping {
        argv.push("--network".into());
        argv.push(format!("{}={}", nic.mac, net.uuid));
    }
    if !name.is_empty() {
        argv.push("--name".into());
        argv.push(name);
    }
    argv.push("--".into());
    argv.extend(disks.iter().map(|d| d.path.clone()));
    Ok(Outcome::Convert(ConvertArgv(argv)))
}

/// Asks for the target until its certificate is confirmed and a login
/// succeeds.
fn log_in<R: BufRead, W: Write>(
    console: &mut Console<R, W>,
    pool: &mut dyn Pool,
) -> Result<Login, DialogError> {
    loop {
        let typed = console.ask("Target XenServer / XCP-ng host (https://HOST[:PORT]): ")?;
        if typed.is_empty() {
            continue;
        }
        let target = match parse_target(&typed) {
            Ok(t) => t,
            Err(e) => {
                console.say(&e)?;
                continue;
            }
        };
        let fingerprint = match pool.fingerprint(&target.host, target.port) {
            Ok(f) => f,
            Err(e) => {
                console.say(&format!(
                    "cannot reach {}:{}: {e}; check the address and this machine's network, then try again",
                    target.host, target.port
                ))?;
                continue;
            }
        };
        console.say(&format!(
            "{} presents a certificate with SHA-256 fingerprint\n  {fingerprint}\n\
             Compare it with the host's own (XenCenter: the host's General tab, Certificates; \
             or on the host: openssl x509 -noout -fingerprint -sha256 -in /etc/xensource/xapi-ssl.pem).",
            target.url
        ))?;
        if !console.yes_no("Is this the host's fingerprint?")? {
            console.say("not trusted: nothing was sent. Enter the target again.")?;
            continue;
        }
        let mut user = "root".to_string();
        loop {
            user = console.ask_default("User name", &user)?;
            let password = console.ask_secret("Password: ")?;
            match pool.login(&target.url, &fingerprint, &user, &password) {
                Ok(()) => {
                    console.say(&format!("logged in to {} as {user}", target.url))?;
                    return Ok(Login {
                        target,
                        fingerprint,
                        user,
                        password,
                    });
                }
                Err(LoginError::Rejected) => {
                    console.say("wrong user name or password; try again")?;
                }
                Err(LoginError::Other(e)) => {
                    console.say(&format!("logging in failed: {e}"))?;
                    console.say("Enter the target again.")?;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "dialog_tests.rs"]
mod tests;
