//! `xenlift convert --to https://HOST`: the source disks become a stopped,
//! complete VM on a XenServer / XCP-ng pool.
//!
//! Order: plan -> provision (VM blocked from starting) -> copy every disk
//! (several at once, resuming after breaks) -> guest fix-up hook -> verify ->
//! finish (unblock, tag) and report. Any failure or Ctrl-C leaves the VM
//! blocked and marked incomplete, or removes it with --cleanup-on-failure.

mod credentials;
mod firmware;
pub mod fixup;
mod interrupt;
mod plan;
mod progress;
mod provision;
mod report;
pub mod upload;
mod verify;
mod vhd_read;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use disk::{DiskLayout, SourceDisk};
use wire::{BlockPlan, Format};
use xapi::{Connect, Secret, Session};

use super::ConvertArgs;
use crate::units::human;
use plan::VmPlan;
use progress::DiskProgress;
use provision::Provisioned;
use report::{DiskReport, Report, REPORT_VERSION};
use upload::Sent;
pub use verify::Mode as VerifyMode;

/// How to reach and log in to the pool (convert and fixup).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Pin the server certificate: its SHA-256 fingerprint (AB:CD:.. or hex).
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// Trust the CAs in this PEM file instead of pinning.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Permit http:// (the password and session then travel in clear).
    #[arg(long)]
    pub allow_plaintext: bool,
    /// XAPI user.
    #[arg(long, default_value = "root")]
    pub username: String,
    /// File whose first line is the password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// The password itself (visible to other users when typed on a command line).
    #[arg(long, value_parser = parse_secret)]
    pub password: Option<Secret>,
}

/// Options of `convert` that only a XAPI target uses.
#[derive(Debug, Clone, clap::Args)]
pub struct XapiArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// VM name (default: the source hostname, else the first disk's name).
    #[arg(long)]
    pub name: Option<String>,
    /// vCPUs (default: this machine's for its own disks, else 2).
    #[arg(long)]
    pub vcpus: Option<u32>,
    /// Memory, e.g. 4096M or 8G (default: this machine's for its own disks, else 2G).
    #[arg(long, value_parser = plan::parse_size)]
    pub memory: Option<u64>,
    /// SR name or UUID (default: the pool's default SR).
    #[arg(long)]
    pub sr: Option<String>,
    /// NIC=NETWORK, repeatable: a source MAC or interface name, and a network
    /// name or UUID (default: the pool's first non-internal network).
    #[arg(long = "network", value_name = "NIC=NETWORK")]
    pub networks: Vec<String>,
    /// Disks streamed at once.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Check the target after the copy: full, sample or none.
    #[arg(long, default_value = "sample", value_parser = verify::parse_mode)]
    pub verify: VerifyMode,
    /// Remove the VM and its disks when the conversion fails.
    #[arg(long)]
    pub cleanup_on_failure: bool,
    /// Print the plan and create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

/// A source disk, its layout and what of it travels.
pub struct Source {
    pub disk: Arc<SourceDisk>,
    pub layout: DiskLayout,
    pub plan: BlockPlan,
}

pub fn convert(url: &str, args: &ConvertArgs) -> anyhow::Result<()> {
    let x = &args.xapi;
    anyhow::ensure!(
        !args.disks.is_empty(),
        "name the disks to convert (finding local disks is not implemented yet)"
    );
    anyhow::ensure!(x.parallel > 0, "--parallel must be at least 1");
    anyhow::ensure!(
        !args.force,
        "--force is for dir: targets; a XAPI target always gets a new VM"
    );
    interrupt::install();
    let started = Instant::now();

    let opened = args
        .disks
        .iter()
        .map(|p| SourceDisk::open(p).with_context(|| format!("opening {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let layouts = disk::inspect(&opened).context("inspecting the disks")?;

    let session = Arc::new(login(url, &x.connect)?);
    let mut sources = Vec::new();
    for (d, layout) in opened.into_iter().zip(layouts) {
        // The check of the format's size limit comes with the plan below.
        let zero_scan = !args.no_zero_scan && !x.dry_run;
        let planned = super::source::plan(d, &layout, Format::RawChunked, zero_scan)?;
        if interrupt::requested() {
            return Err(interrupt::error());
        }
        sources.push(Source {
            disk: planned.disk,
            layout,
            plan: planned.plan,
        });
    }
    let (plan, resolved) = plan::build(&session, x, args.format, &sources)?;
    if x.dry_run {
        print!("{plan}");
        println!("xenlift: dry run: nothing was created");
        if let Some(path) = &x.report {
            report_of(&session, Some(plan), started, "dry-run", None).write(path)?;
        }
        return Ok(());
    }
    println!("{plan}");

    let mut made = Provisioned::default();
    let disks_out = Mutex::new(Vec::new());
    let mut fixup_done = None;
    let result = provision::provision(&session, &plan, &resolved.sr, &mut made)
        .and_then(|()| copy_all(&session, &plan, &sources, &made, &disks_out, x.parallel))
        .and_then(|()| {
            fixup_done = Some(if args.no_fixup {
                serde_json::json!({"status": "skipped", "reason": "--no-fixup"})
            } else {
                let mut disks = disks_out.lock().unwrap_or_else(|e| e.into_inner());
                fixup::deliver(&session, &plan, &sources, &made, &mut disks)?
            });
            verify_all(&session, x.verify, &made, &disks_out)
        })
        .and_then(|()| provision::finish(&session, &plan, &made));
    let mut disks = disks_out.into_inner().unwrap_or_else(|e| e.into_inner());
    disks.sort_by(|a, b| a.userdevice.cmp(&b.userdevice));
    let mut report = report_of(&session, Some(plan.clone()), started, "converted", None);
    report.vm_uuid = made.vm.as_ref().map(|_| made.vm_uuid.clone());
    report.warnings = disks.iter().flat_map(|d| d.sent.warnings.clone()).collect();
    report.wire_bytes = disks.iter().map(|d| d.sent.wire_bytes).sum();
    report.bytes_per_second = report.wire_bytes as f64 / report.seconds.max(1e-6);
    report.disks = disks;
    report.fixup = fixup_done;
    match result {
        Ok(()) => {
            if let Some(path) = &x.report {
                report.write(path)?;
            }
            for d in &report.disks {
                println!(
                    "{} -> VDI {}: {} on the wire in {:.1} s ({}/s), {} retries, {} resent",
                    d.source,
                    d.vdi_uuid,
                    human(d.sent.wire_bytes),
                    d.sent.seconds,
                    human(d.bytes_per_second as u64),
                    d.sent.retries,
                    human(d.sent.bytes_resent)
                );
            }
            let _ = Arc::try_unwrap(session).map(Session::logout);
            println!(
                "xenlift: converted {:?} in {:.1} s: VM uuid {}",
                plan.name, report.seconds, made.vm_uuid
            );
            Ok(())
        }
        Err(e) => {
            let why = format!("{e:#}");
            let cleanup = if made.vm.is_none() && made.vdis.is_empty() {
                None
            } else if x.cleanup_on_failure {
                for p in provision::remove(&session, &made) {
                    eprintln!("xenlift: warning: {p}");
                }
                Some("removed".to_string())
            } else {
                provision::mark_incomplete(&session, &plan, &made, &why);
                Some("left incomplete".to_string())
            };
            report.outcome = "failed".into();
            report.error = Some(why);
            report.cleanup = cleanup.clone();
            if let Some(path) = &x.report {
                if let Err(w) = report.write(path) {
                    eprintln!("xenlift: warning: {w:#}");
                }
            }
            let what = match cleanup.as_deref() {
                Some("removed") => "the VM and its disks were removed (--cleanup-on-failure)".to_string(),
                Some(_) => format!(
                    "the VM {} is left blocked from starting and marked incomplete; delete it, or add --cleanup-on-failure next time",
                    made.vm_uuid
                ),
                None => "nothing was created on the pool".to_string(),
            };
            Err(e.context(format!("the conversion failed; {what}")))
        }
    }
}

/// Logs in as `--username`, trusting the server as the options say.
pub fn login(url: &str, x: &ConnectArgs) -> anyhow::Result<Session> {
    let mut connect = Connect::new(url).allow_plaintext(x.allow_plaintext);
    if let Some(fp) = &x.fingerprint {
        connect = connect.pin(fp.parse().context("reading --fingerprint")?);
    }
    if let Some(ca) = &x.ca_bundle {
        connect = connect.ca_bundle(ca);
    }
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string();
    let password = credentials::password(x, &host)?;
    connect
        .login(&x.username, password)
        .with_context(|| format!("logging in to {host} as {}", x.username))
}

fn report_of(
    session: &Session,
    plan: Option<VmPlan>,
    started: Instant,
    outcome: &str,
    error: Option<String>,
) -> Report {
    Report {
        version: REPORT_VERSION,
        tool: concat!("xenlift ", env!("CARGO_PKG_VERSION")).to_string(),
        outcome: outcome.to_string(),
        error,
        host: session.host(),
        vm_uuid: None,
        cleanup: None,
        plan,
        disks: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
        wire_bytes: 0,
        bytes_per_second: 0.0,
        warnings: Vec::new(),
        fixup: None,
    }
}

/// Streams every disk, at most `--parallel` at once; the first failure stops
/// the others from starting.
fn copy_all(
    session: &Arc<Session>,
    plan: &VmPlan,
    sources: &[Source],
    made: &Provisioned,
    out: &Mutex<Vec<DiskReport>>,
    parallel: usize,
) -> anyhow::Result<()> {
    let progress: Vec<Arc<DiskProgress>> = plan
        .disks
        .iter()
        .map(|d| DiskProgress::new(format!("disk {}", d.userdevice)))
        .collect();
    for (p, d) in progress.iter().zip(&plan.disks) {
        match session.task_create(
            &format!("xenlift: copying disk {} of {}", d.userdevice, plan.name),
            &format!("from {}", d.source),
        ) {
            Ok(t) => *p.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(t),
            Err(e) => tracing::warn!(error = %e, "could not create a progress task"),
        }
    }
    let display = progress::Display::start(session.clone(), progress.clone());
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(None::<anyhow::Error>);
    let workers = plan.disks.len().min(sources.len()).min(parallel);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let (Some(d), Some(src), Some((vdi, uuid))) =
                    (plan.disks.get(i), sources.get(i), made.vdis.get(i))
                else {
                    return;
                };
                let job = upload::Job {
                    session,
                    vdi: vdi.clone(),
                    source: src.disk.clone(),
                    plan: src.plan.clone(),
                    format: d.format,
                    may_switch_format: plan::sr_takes_vhd(&plan.sr_type) != Some(true),
                    progress: progress[i].clone(),
                    label: format!("disk {} ({})", d.userdevice, d.source),
                };
                match upload::send_disk(job) {
                    Ok(sent) => out
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(DiskReport::new(d, uuid.clone(), sent)),
                    Err(e) => {
                        let mut f = failed.lock().unwrap_or_else(|e| e.into_inner());
                        f.get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    drop(display);
    for p in &progress {
        if let Some(t) = p.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if let Err(e) = session.task_destroy(&t) {
                tracing::debug!(error = %e, "could not destroy a progress task");
            }
        }
    }
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None if interrupt::requested() => Err(interrupt::error()),
        None => Ok(()),
    }
}

fn verify_all(
    session: &Session,
    mode: VerifyMode,
    made: &Provisioned,
    out: &Mutex<Vec<DiskReport>>,
) -> anyhow::Result<()> {
    if mode == VerifyMode::None {
        return Ok(());
    }
    let mut disks = out.lock().unwrap_or_else(|e| e.into_inner());
    for d in disks.iter_mut() {
        if interrupt::requested() {
            return Err(interrupt::error());
        }
        let Some((vdi, _)) = made.vdis.iter().find(|(_, u)| *u == d.vdi_uuid) else {
            continue;
        };
        let Sent {
            hashes,
            disk_sha256,
            ..
        } = &d.sent;
        let size = d.size;
        let label = format!("disk {} ({})", d.userdevice, d.source);
        let v = verify::verify(session, vdi, size, hashes, *disk_sha256, mode, &label)?;
        println!(
            "{label}: verified ({:?}): {} blocks match",
            v.mode, v.blocks_checked
        );
        d.verify = Some(v);
    }
    Ok(())
}
