//! `xapi-sim`: serve a simulated XAPI pool until killed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use xapi_sim::{
    AfterBytes, Config, FailTask, Faults, PoolMember, RateLimit, RbacDeny, Times, DEFAULT_PASSWORD,
    DEFAULT_USER,
};

/// An XAPI-compatible server for tests and demos: one pool, one host, file-backed
/// VDIs, JSON-RPC and XML-RPC, VDI import and export, fault injection.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Directory for the state: db.json, vdis/*.img, tls/ (kept across restarts).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Serve HTTPS with a self-signed RSA-2048 certificate kept in DIR/tls.
    #[arg(long)]
    tls: bool,
    /// User name that logs in.
    #[arg(long, default_value = DEFAULT_USER)]
    user: String,
    /// Password that logs in.
    #[arg(long, env = "XAPI_SIM_PASSWORD", hide_env_values = true, default_value = DEFAULT_PASSWORD)]
    password: String,
    /// physical_size in bytes of the default and the thick SR.
    #[arg(long, value_name = "BYTES")]
    sr_size: Option<u64>,
    /// Faults as JSON (the body of POST /xapi-sim/faults), or @FILE.
    #[arg(long, value_name = "JSON")]
    faults: Option<String>,
    /// Reset the connection after BYTES of an import body.
    #[arg(long, value_name = "BYTES")]
    drop_import_after: Option<u64>,
    /// Cancel the import's task after BYTES of its body.
    #[arg(long, value_name = "BYTES")]
    cancel_import_after: Option<u64>,
    /// Fail import and export tasks with this error code, after the 200.
    #[arg(long, value_name = "CODE")]
    fail_task: Option<String>,
    /// A parameter of the --fail-task error (repeat for more).
    #[arg(long, value_name = "PARAM", requires = "fail_task")]
    fail_task_param: Vec<String>,
    /// Make VDI.create fail with SR_FULL.
    #[arg(long)]
    sr_full: bool,
    /// Cap import and export bodies at this many bytes per second.
    #[arg(long, value_name = "BYTES_PER_SECOND")]
    rate_limit: Option<u64>,
    /// Answer as a pool member whose master is ADDRESS (HOST_IS_SLAVE, 302).
    #[arg(long, value_name = "ADDRESS")]
    pool_member: Option<String>,
    /// The master's SHA-256 fingerprint reported to pool-member logins.
    #[arg(long, value_name = "FINGERPRINT", requires = "pool_member")]
    master_fingerprint: Option<String>,
    /// Deny a method (VM.destroy) or HTTP action (http/put_import_raw_vdi)
    /// as RBAC does; '*' denies all; repeat for more.
    #[arg(long, value_name = "METHOD")]
    rbac_deny: Vec<String>,
    /// Limit each fault given by a flag to the next K occurrences.
    #[arg(long, value_name = "K")]
    fault_times: Option<u64>,
}

impl Cli {
    fn faults(&self) -> anyhow::Result<Faults> {
        let mut faults = match &self.faults {
            None => Faults::default(),
            Some(text) => {
                let json = match text.strip_prefix('@') {
                    Some(path) => {
                        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
                    }
                    None => text.clone(),
                };
                serde_json::from_str(&json).context("parsing --faults")?
            }
        };
        let times = self.fault_times;
        if let Some(bytes) = self.drop_import_after {
            faults.drop_import_after = Some(AfterBytes { bytes, times });
        }
        if let Some(bytes) = self.cancel_import_after {
            faults.cancel_import_after = Some(AfterBytes { bytes, times });
        }
        if let Some(code) = &self.fail_task {
            faults.fail_task = Some(FailTask {
                code: code.clone(),
                params: self.fail_task_param.clone(),
                times,
            });
        }
        if self.sr_full {
            faults.sr_full = Some(Times { times });
        }
        if let Some(rate) = self.rate_limit {
            if rate == 0 {
                bail!("--rate-limit must be more than 0 bytes per second");
            }
            faults.rate_limit = Some(RateLimit {
                bytes_per_second: rate,
                times,
            });
        }
        if let Some(master) = &self.pool_member {
            faults.pool_member = Some(PoolMember {
                master: master.clone(),
                master_fingerprint_sha256: self.master_fingerprint.clone(),
                master_fingerprint_sha1: None,
                times,
            });
        }
        if !self.rbac_deny.is_empty() {
            let all = self.rbac_deny.iter().any(|m| m == "*");
            faults.rbac_deny = Some(RbacDeny {
                methods: if all {
                    Vec::new()
                } else {
                    self.rbac_deny.clone()
                },
                times,
            });
        }
        Ok(faults)
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config {
        listen: cli.listen,
        state_dir: cli.state.clone(),
        tls: cli.tls,
        user: cli.user.clone(),
        password: cli.password.clone(),
        faults: cli.faults()?,
        sr_size: cli.sr_size,
    };
    let sim =
        xapi_sim::spawn(config).with_context(|| format!("starting xapi-sim on {}", cli.listen))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "xapi-sim listening on {}", sim.base_url())?;
    if let Some(fingerprint) = sim.fingerprint() {
        writeln!(
            out,
            "xapi-sim certificate SHA-256 fingerprint {fingerprint}"
        )?;
        writeln!(
            out,
            "xapi-sim certificate file {}",
            sim.cert_path().display()
        )?;
    }
    out.flush()?;
    drop(out);
    // Every change is saved as it happens, so being killed loses nothing.
    loop {
        std::thread::park();
    }
}
