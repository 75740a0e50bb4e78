//! Benchmark driver for `ci/bench-wire`: encodes an image file with a given
//! map the way `convert --to dir:` does (sparse output file, fsync), or reads the mapped bytes with a
//! plain loop (the ceiling). Prints one JSON line of figures.
//!
//! wire-encode IMAGE MAPFILE MODE [OUT]
//!   MAPFILE  lines "offset length" (the extents to send)
//!   MODE     ceiling | vhd | vhd-scan | raw-chunked | raw-chunked-scan
//!   OUT      output file (fsynced), or absent for a discarding sink
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::time::Instant;

use extents::{Extent, ExtentMap, FileAt, ReadAt};
use xenlift_wire::{BlockPlan, EncodedStream, Format};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: wire-encode IMAGE MAPFILE MODE [OUT]");
        std::process::exit(2);
    }
    let image = File::open(&args[1]).expect("opening the image");
    let source = FileAt::from_file(image).expect("image size");
    let map: ExtentMap = std::fs::read_to_string(&args[2])
        .expect("reading the map")
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some(Extent::new(it.next()??, it.next()??))
        })
        .collect();
    let mode = args[3].as_str();
    let started = Instant::now();
    if mode == "ceiling" {
        let bytes = read_mapped(&source, &map);
        report(mode, started, bytes, bytes, 0, 0.0);
        return;
    }
    let (format, scan) = match mode {
        "vhd" => (Format::Vhd, false),
        "vhd-scan" => (Format::Vhd, true),
        "raw-chunked" => (Format::RawChunked, false),
        "raw-chunked-scan" => (Format::RawChunked, true),
        other => panic!("unknown mode {other}"),
    };
    let mut plan = BlockPlan::full(source.size(), &map);
    let mut scan_secs = 0.0;
    if scan {
        plan = plan.without_zero_blocks(&source).expect("zero scan").0;
        scan_secs = started.elapsed().as_secs_f64();
    }
    let stream = EncodedStream::start(source, plan, format).expect("starting the stream");
    let r = match args.get(4) {
        Some(out) => {
            let file = File::create(out).expect("creating the output");
            stream.write_to_file(&file).expect("encoding")
        }
        None => stream.write_to(&mut io::sink()).expect("encoding"),
    };
    report(
        mode,
        started,
        r.stream_bytes,
        r.data_bytes,
        r.zero_blocks_skipped,
        scan_secs,
    );
}

/// The ceiling: one thread, 2 MiB reads of the mapped bytes, nothing else.
fn read_mapped(source: &FileAt, map: &ExtentMap) -> u64 {
    let mut buf = vec![0u8; 2 << 20];
    let mut total = 0;
    for e in map {
        let mut off = e.offset;
        while off < e.end() {
            let n = (e.end() - off).min(buf.len() as u64) as usize;
            source.file().read_exact_at(&mut buf[..n], off).unwrap();
            off += n as u64;
            total += n as u64;
        }
    }
    total
}

fn report(mode: &str, started: Instant, out: u64, data: u64, zero: u64, scan: f64) {
    let secs = started.elapsed().as_secs_f64();
    let mut stdout = io::stdout();
    writeln!(
        stdout,
        "{{\"mode\":\"{mode}\",\"seconds\":{secs:.3},\"bytes_out\":{out},\"data_bytes\":{data},\
         \"zero_blocks\":{zero},\"scan_seconds\":{scan:.3}}}"
    )
    .unwrap();
}
