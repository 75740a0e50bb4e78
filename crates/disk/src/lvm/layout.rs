//! Where each byte of a logical volume lives: its segments resolved to byte
//! ranges on the given PVs, read through as one volume ([`LvReader`]) and
//! used to carry a map of the LV's content onto its PVs.

use std::io;

use extents::{ExtentBuilder, ExtentMap, ReadAt};

/// One segment of an LV, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLayout {
    /// Start of the segment in the LV.
    pub lv_start: u64,
    pub len: u64,
    /// Stripe size; equal to `len` for a linear segment.
    pub stripe_bytes: u64,
    /// (input PV index, byte offset on that PV) of each stripe's start.
    pub stripes: Vec<(usize, u64)>,
}

impl SegmentLayout {
    /// Where segment byte `rel` lives: (stripe index, PV byte offset, bytes
    /// contiguous from there within this segment).
    fn locate(&self, rel: u64) -> (usize, u64, u64) {
        let n = self.stripes.len().max(1) as u64;
        let sb = self.stripe_bytes.max(1);
        let chunk = rel / sb;
        let within = rel % sb;
        let stripe = (chunk % n) as usize;
        let row = chunk / n;
        let start = self.stripes.get(stripe).map_or(0, |s| s.1);
        let left = (sb - within).min(self.len.saturating_sub(rel));
        (stripe, start + row * sb + within, left)
    }
}

/// An LV made only of linear and striped segments on PVs we have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvLayout {
    /// Sorted, contiguous from 0.
    pub segments: Vec<SegmentLayout>,
}

impl LvLayout {
    pub fn size(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.lv_start + s.len)
    }

    /// Carries `map` (LV offsets) onto the PVs: one map per input PV index
    /// the LV touches. Each stripe's share of a range is computed by rows,
    /// so the work is per stripe, not per chunk.
    pub fn to_pvs(&self, map: &ExtentMap) -> Vec<(usize, ExtentMap)> {
        let mut out: Vec<(usize, ExtentBuilder)> = Vec::new();
        let mut push = |pv: usize, offset: u64, len: u64| {
            if len == 0 {
                return;
            }
            match out.iter_mut().find(|(p, _)| *p == pv) {
                Some((_, b)) => b.push(offset, len),
                None => {
                    let mut b = ExtentBuilder::new();
                    b.push(offset, len);
                    out.push((pv, b));
                }
            }
        };
        for seg in &self.segments {
            for e in &map.clip(extents::Extent::new(seg.lv_start, seg.len)) {
                let (a, b) = (e.offset - seg.lv_start, e.end() - seg.lv_start);
                let n = seg.stripes.len() as u64;
                let sb = seg.stripe_bytes.max(1);
                let row_bytes = sb * n;
                let (first_row, last_row) = (a / row_bytes, (b - 1) / row_bytes);
                for (s, &(pv, start)) in seg.stripes.iter().enumerate() {
                    let s = s as u64;
                    // The stripe's chunk in `row`, clipped to [a, b), as PV bytes.
                    let piece = |row: u64| {
                        let c0 = row * row_bytes + s * sb;
                        let (lo, hi) = (c0.max(a), (c0 + sb).min(b));
                        (lo < hi).then(|| (start + row * sb + (lo - c0), hi - lo))
                    };
                    if let Some((o, l)) = piece(first_row) {
                        push(pv, o, l);
                    }
                    if last_row > first_row + 1 {
                        // Rows strictly between are whole: one PV run.
                        push(
                            pv,
                            start + (first_row + 1) * sb,
                            (last_row - first_row - 1) * sb,
                        );
                    }
                    if last_row > first_row {
                        if let Some((o, l)) = piece(last_row) {
                            push(pv, o, l);
                        }
                    }
                }
            }
        }
        out.into_iter().map(|(p, b)| (p, b.build())).collect()
    }
}

/// Reads an LV through its segments on the given PVs.
pub struct LvReader<'a> {
    pub layout: &'a LvLayout,
    pub pvs: &'a [&'a dyn ReadAt],
}

impl ReadAt for LvReader<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let segs = &self.layout.segments;
        let i = segs.partition_point(|s| s.lv_start + s.len <= offset);
        let Some(seg) = segs.get(i) else {
            return Ok(0);
        };
        let (stripe, at, left) = seg.locate(offset - seg.lv_start);
        let pv = seg
            .stripes
            .get(stripe)
            .and_then(|&(p, _)| self.pvs.get(p))
            .ok_or_else(|| io::Error::other("LV segment refers to a PV that was not given"))?;
        let n = (buf.len() as u64).min(left) as usize;
        let got = pv.read_at(&mut buf[..n], at)?;
        if got == 0 && n > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("LV data at PV byte {at} is past the end of the PV"),
            ));
        }
        Ok(got)
    }

    fn size(&self) -> u64 {
        self.layout.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use extents::Extent;
    use proptest::prelude::*;

    /// Two PVs of 64 bytes with distinct contents; a linear segment of 16
    /// bytes then a 2-stripe segment of 32 bytes, stripe 4.
    fn fixture() -> (Vec<Vec<u8>>, LvLayout) {
        let pvs = vec![(0..64).collect::<Vec<u8>>(), (100..164).collect()];
        let layout = LvLayout {
            segments: vec![
                SegmentLayout {
                    lv_start: 0,
                    len: 16,
                    stripe_bytes: 16,
                    stripes: vec![(1, 8)],
                },
                SegmentLayout {
                    lv_start: 16,
                    len: 32,
                    stripe_bytes: 4,
                    stripes: vec![(0, 0), (1, 40)],
                },
            ],
        };
        (pvs, layout)
    }

    /// Where every LV byte lives, byte by byte: the reference.
    fn owner(layout: &LvLayout, lv: u64) -> (usize, u64) {
        let seg = layout
            .segments
            .iter()
            .find(|s| lv >= s.lv_start && lv < s.lv_start + s.len)
            .unwrap();
        let (stripe, at, _) = seg.locate(lv - seg.lv_start);
        (seg.stripes[stripe].0, at)
    }

    #[test]
    fn reads_through_stripes() {
        let (pvs, layout) = fixture();
        let refs: Vec<&dyn ReadAt> = pvs.iter().map(|p| p as &dyn ReadAt).collect();
        let lv = LvReader {
            layout: &layout,
            pvs: &refs,
        };
        assert_eq!(lv.size(), 48);
        let all = lv.read_vec(0, 48).unwrap();
        assert_eq!(&all[..16], &pvs[1][8..24]);
        // Stripe rows: 4 bytes of PV0 from 0, 4 of PV1 from 40, then PV0 from 4...
        assert_eq!(&all[16..20], &pvs[0][0..4]);
        assert_eq!(&all[20..24], &pvs[1][40..44]);
        assert_eq!(&all[24..28], &pvs[0][4..8]);
        assert_eq!(&all[44..48], &pvs[1][52..56]);
    }

    proptest! {
        #[test]
        fn to_pvs_equals_byte_by_byte(ranges in prop::collection::vec((0u64..48, 1u64..20), 0..6)) {
            let (_, layout) = fixture();
            let map = ExtentMap::from_unsorted(ranges.iter().map(|&(o, l)| Extent::new(o, l.min(48 - o))).collect());
            let mut expected: Vec<Vec<u64>> = vec![Vec::new(), Vec::new()];
            for e in &map {
                for b in e.offset..e.end() {
                    let (pv, at) = owner(&layout, b);
                    expected[pv].push(at);
                }
            }
            let mut got: Vec<Vec<u64>> = vec![Vec::new(), Vec::new()];
            for (pv, m) in layout.to_pvs(&map) {
                for e in &m {
                    got[pv].extend(e.offset..e.end());
                }
            }
            for v in expected.iter_mut().chain(got.iter_mut()) {
                v.sort_unstable();
            }
            prop_assert_eq!(got, expected);
        }
    }
}
