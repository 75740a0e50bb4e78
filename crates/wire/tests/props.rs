//! Property tests over random sizes, maps and plans: the stream length is the
//! one promised, blocks come in increasing offset without overlap, and an
//! independent decoder rebuilds exactly the expected image.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod decode;

use std::io::Read;

use extents::{Extent, ExtentMap};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use xenlift_wire::{BlockPlan, EncodedStream, Format, PlanKind, BLOCK_SIZE};

/// A source with random runs of data and zeros.
fn source(size: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; size];
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut pos = 0;
    while pos < size {
        let run = (next() % (3 << 20)) as usize + 1;
        let end = (pos + run).min(size);
        if next() % 2 == 0 {
            for b in &mut v[pos..end] {
                *b = next() as u8;
            }
        }
        pos = end;
    }
    v
}

fn map_of(v: &[(u64, u64)], size: u64) -> ExtentMap {
    ExtentMap::from_unsorted(
        v.iter()
            .map(|&(o, l)| Extent::new(o % size.max(1), l))
            .collect(),
    )
}

/// What the target must hold: `before`, with the source's bytes on the
/// planned ranges.
fn expected(src: &[u8], plan: &BlockPlan, before: &[u8]) -> Vec<u8> {
    let mut img = before.to_vec();
    for e in plan.ranges() {
        let (start, end) = (e.offset as usize, e.end() as usize);
        img[start..end].fill(0);
        let have = end.min(src.len()).max(start);
        img[start..have].copy_from_slice(&src[start..have]);
    }
    img
}

fn read_all(mut s: EncodedStream, step: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; step];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn check(
    size: u64,
    ranges: &[(u64, u64)],
    seed: u64,
    delta: bool,
    zero_scan: bool,
    format: Format,
    step: usize,
) -> Result<(), TestCaseError> {
    let src = source(size as usize, seed);
    let map = map_of(ranges, size);
    let mut plan = if delta {
        BlockPlan::delta(size, &map)
    } else {
        BlockPlan::full(size, &map)
    };
    let unscanned = plan.clone();
    if zero_scan && !delta {
        plan = plan.without_zero_blocks(&src).unwrap().0;
    }
    let vsize = plan.size() as usize;
    let before = if delta {
        source(vsize, seed ^ 0xdead)
    } else {
        vec![0u8; vsize]
    };
    let want = expected(&src, &unscanned, &before);

    // Three buffers, so that they are reused and stale bytes would show.
    let mut stream =
        EncodedStream::start_with_buffers(src.clone(), plan.clone(), format, 3).unwrap();
    let promised = stream.length();
    let outcome = stream.outcome().unwrap();
    let bytes = read_all(stream, step);
    prop_assert_eq!(
        bytes.len() as u64,
        promised,
        "length promised before the first byte"
    );
    let report = outcome.wait().unwrap();
    prop_assert_eq!(report.stream_bytes, promised);

    let mut image = before.clone();
    let sent: Vec<u64> = match format {
        Format::Vhd => decode::apply_vhd(&bytes, &mut image),
        Format::RawChunked => {
            let frames = decode::apply_chunked(&bytes, &mut image);
            let mut blocks: Vec<u64> = frames.iter().map(|f| f.0 / BLOCK_SIZE).collect();
            blocks.dedup();
            blocks
        }
    };
    prop_assert!(image == want, "decoded image differs from the expected one");
    let planned: Vec<u64> = plan.blocks().map(|b| b.index).collect();
    prop_assert_eq!(&sent, &planned);
    prop_assert_eq!(report.blocks_sent as usize, planned.len());

    // Block hashes: the block as sent (planned ranges, zeros elsewhere).
    let blank = vec![0u8; vsize];
    let as_sent = expected(&src, &plan, &blank);
    for (index, hash) in report.block_hashes.iter() {
        let start = (index * BLOCK_SIZE) as usize;
        let end = (start + BLOCK_SIZE as usize).min(vsize);
        let direct: [u8; 32] = Sha256::digest(&as_sent[start..end]).into();
        prop_assert_eq!(hash, &direct, "hash of block {}", index);
    }
    match plan.kind() {
        PlanKind::Full => {
            prop_assert_eq!(report.disk_sha256, Some(decode::disk_hash(&image)))
        }
        PlanKind::Delta => prop_assert_eq!(report.disk_sha256, None),
    }
    Ok(())
}

fn any_format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Vhd), Just(Format::RawChunked)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn streams_decode_to_the_planned_image(
        size in prop_oneof![1u64..5000, 1u64..(13 << 20)],
        ranges in prop_oneof![
            prop::collection::vec((0u64..(13 << 20), 1u64..(3 << 20)), 0..12),
            // Many small ranges: several per block, some closer than a read.
            prop::collection::vec((0u64..(13 << 20), 1u64..100_000), 0..60),
        ],
        seed in any::<u64>(),
        delta in any::<bool>(),
        zero_scan in any::<bool>(),
        format in any_format(),
        step in prop_oneof![Just(1usize << 20), 1usize..70_000],
    ) {
        check(size, &ranges, seed, delta, zero_scan, format, step)?;
    }

    #[test]
    fn delta_block_lists_send_exactly_those_blocks(
        blocks in prop::collection::btree_set(0u64..8, 0..8),
        format in any_format(),
    ) {
        let size = 7 * BLOCK_SIZE + 4096;
        let src = source(size as usize, 7);
        let plan = BlockPlan::delta_blocks(size, blocks.iter().copied());
        let stream = EncodedStream::start(src.clone(), plan, format).unwrap();
        let promised = stream.length();
        let bytes = read_all(stream, 1 << 20);
        prop_assert_eq!(bytes.len() as u64, promised);
        let before = vec![0xAAu8; size as usize];
        let mut image = before.clone();
        match format {
            Format::Vhd => { decode::apply_vhd(&bytes, &mut image); }
            Format::RawChunked => { decode::apply_chunked(&bytes, &mut image); }
        }
        for (i, (got, old)) in image.chunks(BLOCK_SIZE as usize).zip(before.chunks(BLOCK_SIZE as usize)).enumerate() {
            let start = i * BLOCK_SIZE as usize;
            if blocks.contains(&(i as u64)) {
                prop_assert!(got == &src[start..start + got.len()], "block {} sent", i);
            } else {
                prop_assert!(got == old, "block {} untouched", i);
            }
        }
    }
}

#[test]
fn write_to_gives_the_same_bytes_as_read() {
    let size = 5 * BLOCK_SIZE + 512;
    let src = source(size as usize, 3);
    let map = map_of(&[(100, 3 << 20), (9 << 20, 4096)], size);
    for format in [Format::Vhd, Format::RawChunked] {
        let plan = BlockPlan::full(size, &map);
        let a = read_all(
            EncodedStream::start(src.clone(), plan.clone(), format).unwrap(),
            4096,
        );
        let mut b = Vec::new();
        let report = EncodedStream::start(src.clone(), plan, format)
            .unwrap()
            .write_to(&mut b)
            .unwrap();
        assert_eq!(report.stream_bytes, b.len() as u64);
        // VHD ids and timestamps differ between streams; compare past the footer.
        assert_eq!(a.len(), b.len());
        let skip = if format == Format::Vhd { 512 } else { 0 };
        assert!(a[skip..a.len() - skip] == b[skip..b.len() - skip]);
    }
}

#[test]
fn a_source_that_shrank_fails_the_stream_with_a_clear_error() {
    let plan = BlockPlan::full(8 * BLOCK_SIZE, &ExtentMap::single(0, 8 * BLOCK_SIZE));
    let small = vec![1u8; 3 * BLOCK_SIZE as usize];
    let mut stream = EncodedStream::start(small, plan, Format::RawChunked).unwrap();
    let outcome = stream.outcome().unwrap();
    let mut sink = Vec::new();
    let err = std::io::copy(&mut stream, &mut sink).unwrap_err();
    assert!(err.to_string().contains("inspect it again"), "{err}");
    drop(stream);
    assert!(outcome.wait().is_err());
}

#[test]
fn dropping_a_stream_early_stops_it_and_tells_the_outcome() {
    let size = 64 * BLOCK_SIZE;
    let plan = BlockPlan::full(size, &ExtentMap::single(0, size));
    let mut stream = EncodedStream::start(vec![7u8; size as usize], plan, Format::Vhd).unwrap();
    let outcome = stream.outcome().unwrap();
    let mut buf = vec![0u8; 3 << 20];
    stream.read_exact(&mut buf).unwrap();
    drop(stream);
    let err = outcome.wait().unwrap_err();
    assert!(err.to_string().contains("ended before"), "{err}");
}

#[test]
fn vhd_over_2040_gib_is_refused_before_reading() {
    let size = (2040u64 << 30) + 512;
    let plan = BlockPlan::full(size, &ExtentMap::single(0, 4096));
    let err = EncodedStream::start(Vec::new(), plan.clone(), Format::Vhd).unwrap_err();
    assert!(err.to_string().contains("raw-chunked"), "{err}");
    // Chunked raw has no limit: the stream is the header, 4 KiB and the end.
    let sparse = SparseZeros(size);
    let s = EncodedStream::start(sparse, plan, Format::RawChunked).unwrap();
    assert_eq!(s.length(), 12 + 4096 + 12);
}

/// A huge disk of zeros that needs no memory.
struct SparseZeros(u64);
impl extents::ReadAt for SparseZeros {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = (self.0.saturating_sub(offset)).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.0
    }
}
