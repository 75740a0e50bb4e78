//! Streaming a disk onto its VDI, surviving dropped connections: after a
//! break, the blocks the host surely holds are kept and the rest goes again
//! as a delta stream onto the same VDI, never from zero.

use std::io::{self, Read};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use extents::{ExtentMap, ReadAt};
use serde::Serialize;
use wire::{BlockPlan, EncodedStream, Format, BLOCK_SIZE};
use xapi::{codes, Error, ImportFormat, ImportRequest, Session, VdiRef};

use super::interrupt;
use super::progress::DiskProgress;

/// Bytes the client counted as sent that may still sit in socket buffers
/// (ours and the host's) and never reached the disk: blocks ending within
/// this distance of the break are sent again.
pub const SAFETY_MARGIN: u64 = 16 << 20;
/// Attempts after the first before giving up.
pub const MAX_RETRIES: u32 = 5;

pub type Hash = [u8; 32];

/// How a disk's upload went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sent {
    /// The format that finally carried the disk.
    pub format: Option<Format>,
    /// Length of the first, complete stream.
    pub stream_bytes: u64,
    /// Every byte handed to the network, over all attempts.
    pub wire_bytes: u64,
    /// Bytes of failed attempts that had to go again.
    pub bytes_resent: u64,
    pub retries: u32,
    pub data_bytes: u64,
    pub blocks_sent: u64,
    pub zero_blocks_skipped: u64,
    #[serde(skip)]
    pub hashes: Vec<(u64, Hash)>,
    #[serde(skip)]
    pub disk_sha256: Option<Hash>,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

/// What the host did with an upload that failed.
enum Failure {
    /// The connection broke after `bytes_sent`: resume.
    Broken {
        bytes_sent: u64,
    },
    /// The whole VHD arrived, and the host could not write it: try raw.
    VhdRefused,
    Fatal,
}

fn classify(e: &Error, format: Format) -> Failure {
    match e {
        Error::TransferInterrupted { bytes_sent, .. } => Failure::Broken {
            bytes_sent: *bytes_sent,
        },
        Error::Transport { .. } => Failure::Broken { bytes_sent: 0 },
        Error::ImportFailed { error, .. }
            if error.is(codes::VDI_IO_ERROR) && format == Format::Vhd =>
        {
            Failure::VhdRefused
        }
        _ => Failure::Fatal,
    }
}

fn import_format(format: Format) -> ImportFormat {
    match format {
        Format::Vhd => ImportFormat::Vhd,
        Format::RawChunked => ImportFormat::ChunkedRaw,
    }
}

/// A stream body that stops when the operator asks. After its last byte it
/// reads once more: the HTTP client takes exactly the announced length and
/// never asks again, and only that extra read lets the stream finish its
/// report (hashes).
struct Stoppable {
    stream: EncodedStream,
    left: u64,
}

impl Read for Stoppable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupt::requested() {
            return Err(io::Error::other("stopped by the operator"));
        }
        let n = self.stream.read(buf)?;
        self.left = self.left.saturating_sub(n as u64);
        if self.left == 0 && n > 0 {
            let extra = self.stream.read(&mut [0u8; 1])?;
            if extra != 0 {
                return Err(io::Error::other("the stream is longer than announced"));
            }
        }
        Ok(n)
    }
}

/// One disk to send.
pub struct Job<'a> {
    pub session: &'a Session,
    pub vdi: VdiRef,
    pub source: Arc<dyn ReadAt>,
    pub plan: BlockPlan,
    pub format: Format,
    /// May the upload fall back to chunked raw when the host refuses VHD?
    pub may_switch_format: bool,
    pub progress: Arc<DiskProgress>,
    pub label: String,
}

/// Sends the whole plan, resuming after breaks; returns the manifest.
pub fn send_disk(job: Job<'_>) -> anyhow::Result<Sent> {
    let started = Instant::now();
    let full = job.plan.clone();
    let mut sent = Sent {
        data_bytes: full.data_bytes(),
        blocks_sent: full.blocks_sent(),
        zero_blocks_skipped: full.zero_blocks_skipped(),
        ..Sent::default()
    };
    let mut format = job.format;
    let mut plan = full.clone();
    // Blocks a failed attempt delivered: hashed from the source at the end.
    let mut delivered = ExtentMap::new();
    loop {
        if interrupt::requested() {
            return Err(interrupt::error());
        }
        let mut stream = EncodedStream::start(job.source.clone(), plan.clone(), format)
            .with_context(|| format!("encoding {}", job.label))?;
        let len = stream.length();
        if sent.stream_bytes == 0 {
            sent.stream_bytes = len;
        }
        let outcome = stream.outcome().context("stream outcome")?;
        let counter = job.progress.attempt(len);
        let request = ImportRequest::new(
            job.vdi.clone(),
            import_format(format),
            Stoppable { stream, left: len },
            len,
        )
        .progress(counter);
        let result = job.session.import_raw_vdi(request);
        if interrupt::requested() {
            return Err(interrupt::error());
        }
        let e = match result {
            Ok(done) => {
                sent.wire_bytes += done.bytes_sent;
                let report = outcome
                    .wait()
                    .with_context(|| format!("reading {}", job.label))?;
                sent.hashes
                    .extend(report.block_hashes.iter().map(|(i, h)| (i, *h)));
                break;
            }
            Err(e) => e,
        };
        drop(outcome);
        let failure = classify(&e, format);
        let retry = sent.retries < MAX_RETRIES;
        match failure {
            Failure::Broken { bytes_sent } if retry => {
                sent.wire_bytes += bytes_sent;
                let (kept, kept_end) = confirmed(&plan, format, bytes_sent);
                sent.bytes_resent += bytes_sent.saturating_sub(kept_end);
                delivered = delivered.union(&plan.ranges().intersect_map(&kept));
                let remaining = plan.ranges().subtract(&kept);
                plan = BlockPlan::delta(full.size(), &remaining);
                sent.retries += 1;
                let wait = backoff(sent.retries);
                let msg = format!(
                    "{}: the upload broke after {} bytes ({e}); resuming in {:.0?} with the {} not yet confirmed (attempt {} of {})",
                    job.label,
                    bytes_sent,
                    wait,
                    crate::units::human(remaining.total_bytes()),
                    sent.retries + 1,
                    MAX_RETRIES + 1
                );
                tracing::warn!("{msg}");
                eprintln!("xenlift: {msg}");
                sent.warnings.push(msg);
                sleep_unless_stopped(wait);
            }
            Failure::VhdRefused if job.may_switch_format && retry => {
                sent.wire_bytes += len;
                sent.bytes_resent += len;
                sent.retries += 1;
                format = Format::RawChunked;
                let msg = format!(
                    "{}: the host could not write the VHD stream ({e}); this SR seems not to take VHD: sending the disk again as chunked raw",
                    job.label
                );
                tracing::warn!("{msg}");
                eprintln!("xenlift: {msg}");
                sent.warnings.push(msg);
            }
            Failure::Broken { .. } => {
                return Err(anyhow::Error::new(e).context(format!(
                    "{}: giving up after {} attempts; check the network path to the host and run the conversion again",
                    job.label,
                    sent.retries + 1
                )))
            }
            Failure::VhdRefused | Failure::Fatal => {
                return Err(anyhow::Error::new(e).context(format!("uploading {}", job.label)))
            }
        }
    }
    if !delivered.is_empty() {
        // Hashes of what earlier attempts delivered, read again from the source.
        let plan = BlockPlan::delta(full.size(), &delivered);
        let stream = EncodedStream::start(job.source.clone(), plan, Format::RawChunked)
            .with_context(|| format!("hashing {}", job.label))?;
        let report = stream
            .write_to(&mut io::sink())
            .with_context(|| format!("hashing {}", job.label))?;
        sent.hashes
            .extend(report.block_hashes.iter().map(|(i, h)| (i, *h)));
    }
    sent.hashes.sort_by_key(|(i, _)| *i);
    sent.hashes.dedup_by_key(|(i, _)| *i);
    sent.disk_sha256 = Some(wire::disk_hash_from_blocks(
        full.size(),
        sent.hashes.iter().map(|(i, h)| (*i, h)),
    ));
    sent.format = Some(format);
    sent.seconds = started.elapsed().as_secs_f64();
    job.progress.finish();
    Ok(sent)
}

/// The whole blocks a broken upload surely delivered (those whose stream
/// bytes end at least [`SAFETY_MARGIN`] before what the client counted as
/// sent), and where the last of them ends in the stream.
fn confirmed(plan: &BlockPlan, format: Format, bytes_sent: u64) -> (ExtentMap, u64) {
    let safe = bytes_sent.saturating_sub(SAFETY_MARGIN);
    let mut kept_end = 0;
    let mut kept = extents::ExtentBuilder::new();
    for (index, end) in wire::block_ends(plan, format) {
        if end > safe {
            break;
        }
        kept_end = end;
        kept.push(index * BLOCK_SIZE, BLOCK_SIZE);
    }
    (kept.build(), kept_end)
}

/// 1 s, 2 s, 4 s... at most 30 s.
fn backoff(retry: u32) -> Duration {
    Duration::from_secs(1u64 << retry.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

fn sleep_unless_stopped(total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !interrupt::requested() {
        thread::sleep(Duration::from_millis(100));
    }
}

/// The seam for changes after the copy (guest fix-up, resume): sends the
/// bytes of `source` inside `changed` onto an existing VDI of `disk_size`
/// bytes, leaving every other byte of the VDI as it is. Returns the hashes
/// of the blocks it touched (the whole block as it now reads, provided the
/// VDI holds `source`'s bytes around the changed ranges).
pub fn send_delta(
    session: &Session,
    vdi: &VdiRef,
    source: Arc<dyn ReadAt>,
    changed: &ExtentMap,
    disk_size: u64,
    format: Format,
) -> anyhow::Result<Sent> {
    let progress = DiskProgress::new(format!("delta onto {vdi}"));
    send_disk(Job {
        session,
        vdi: vdi.clone(),
        source,
        plan: BlockPlan::delta(disk_size, changed),
        format,
        may_switch_format: true,
        progress,
        label: format!("changes to VDI {vdi}"),
    })
}

/// Extension: intersection of two extent maps.
trait IntersectMap {
    fn intersect_map(&self, other: &ExtentMap) -> ExtentMap;
}

impl IntersectMap for ExtentMap {
    fn intersect_map(&self, other: &ExtentMap) -> ExtentMap {
        let all = ExtentMap::single(0, self.end().max(other.end()));
        self.subtract(&all.subtract(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use extents::Extent;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn only_blocks_well_before_the_break_are_kept() {
        const MIB: u64 = 1 << 20;
        let plan = BlockPlan::full(64 * MIB, &ExtentMap::single(0, 64 * MIB));
        // Nothing is kept within the margin.
        let (kept, end) = confirmed(&plan, Format::Vhd, SAFETY_MARGIN);
        assert!(kept.is_empty());
        assert_eq!(end, 0);
        let sent = SAFETY_MARGIN + 9 * MIB;
        let (kept, end) = confirmed(&plan, Format::Vhd, sent);
        // Four blocks (2 MiB + a 512-byte bitmap each, after the headers) end
        // before 9 MiB; the fifth does not.
        assert_eq!(kept.extents(), &[Extent::new(0, 8 * MIB)]);
        assert!(end <= sent - SAFETY_MARGIN && end > 8 * MIB, "{end}");
        let remaining = plan.ranges().subtract(&kept);
        assert_eq!(remaining.total_bytes(), 56 * MIB);
    }

    #[test]
    fn intersection() {
        let a = ExtentMap::from_unsorted(vec![Extent::new(0, 100), Extent::new(200, 100)]);
        let b = ExtentMap::single(50, 200);
        assert_eq!(
            a.intersect_map(&b).extents(),
            &[Extent::new(50, 50), Extent::new(200, 50)]
        );
    }
}
