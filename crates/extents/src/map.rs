//! Byte extents and sorted, merged sets of them.

use serde::{Serialize, Serializer};

/// A byte range `[offset, offset + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
}

impl Extent {
    pub const fn new(offset: u64, len: u64) -> Self {
        Extent { offset, len }
    }

    /// One past the last byte. Saturates so that extents built from hostile
    /// input never wrap.
    pub const fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The overlap of two extents, if any.
    pub fn intersect(&self, other: &Extent) -> Option<Extent> {
        let start = self.offset.max(other.offset);
        let end = self.end().min(other.end());
        (start < end).then(|| Extent::new(start, end - start))
    }
}

/// Serialized as `[offset, length]`, the form `inspect --extents` documents.
impl Serialize for Extent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.offset, self.len].serialize(s)
    }
}

/// Sorted, merged, non-overlapping, non-empty extents.
///
/// Maps are kept as extents, never one bit per block: a 16 TiB disk with a
/// fragmented filesystem still maps into a few million extents at most.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtentMap {
    extents: Vec<Extent>,
}

impl Serialize for ExtentMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.extents.serialize(s)
    }
}

impl ExtentMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// One extent covering `[offset, offset + len)`; empty when `len` is 0.
    pub fn single(offset: u64, len: u64) -> Self {
        let mut builder = ExtentBuilder::new();
        builder.push(offset, len);
        builder.build()
    }

    /// Sorts and merges extents given in any order, overlapping or not.
    pub fn from_unsorted(mut extents: Vec<Extent>) -> Self {
        extents.retain(|e| !e.is_empty());
        extents.sort_unstable();
        let mut merged: Vec<Extent> = Vec::with_capacity(extents.len());
        for e in extents {
            match merged.last_mut() {
                Some(last) if e.offset <= last.end() => {
                    let end = last.end().max(e.end());
                    last.len = end - last.offset;
                }
                _ => merged.push(e),
            }
        }
        merged.shrink_to_fit();
        ExtentMap { extents: merged }
    }

    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Extent> {
        self.extents.iter()
    }

    pub fn len(&self) -> usize {
        self.extents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// Total bytes covered.
    pub fn total_bytes(&self) -> u64 {
        self.extents.iter().map(|e| e.len).sum()
    }

    /// One past the last mapped byte, or 0 for an empty map.
    pub fn end(&self) -> u64 {
        self.extents.last().map_or(0, Extent::end)
    }

    /// Whether `offset` lies inside a mapped extent.
    pub fn contains(&self, offset: u64) -> bool {
        let i = self.extents.partition_point(|e| e.end() <= offset);
        self.extents.get(i).is_some_and(|e| e.offset <= offset)
    }

    /// Bytes covered inside `range`.
    pub fn bytes_in(&self, range: Extent) -> u64 {
        self.overlapping(range)
            .filter_map(|e| e.intersect(&range))
            .map(|e| e.len)
            .sum()
    }

    /// The extents that overlap `range`, unclipped, in order.
    pub fn overlapping(&self, range: Extent) -> impl Iterator<Item = &Extent> {
        let start = self.extents.partition_point(|e| e.end() <= range.offset);
        self.extents[start..]
            .iter()
            .take_while(move |e| e.offset < range.end())
    }

    /// Every byte covered by either map.
    pub fn union(&self, other: &ExtentMap) -> ExtentMap {
        let mut all = Vec::with_capacity(self.len() + other.len());
        all.extend_from_slice(&self.extents);
        all.extend_from_slice(&other.extents);
        ExtentMap::from_unsorted(all)
    }

    /// Bytes of `self` not covered by `other`.
    pub fn subtract(&self, other: &ExtentMap) -> ExtentMap {
        let mut out = ExtentBuilder::new();
        let mut holes = other.extents.iter().peekable();
        for e in &self.extents {
            let mut start = e.offset;
            while let Some(h) = holes.peek() {
                if h.end() <= start {
                    holes.next();
                    continue;
                }
                if h.offset >= e.end() {
                    break;
                }
                out.push(start, h.offset.saturating_sub(start));
                start = start.max(h.end());
                if h.end() > e.end() {
                    break;
                }
                holes.next();
            }
            if start < e.end() {
                out.push(start, e.end() - start);
            }
        }
        out.build()
    }

    /// The part of the map inside `range`.
    pub fn clip(&self, range: Extent) -> ExtentMap {
        let mut out = ExtentBuilder::new();
        for e in self.overlapping(range) {
            if let Some(i) = e.intersect(&range) {
                out.push(i.offset, i.len);
            }
        }
        out.build()
    }

    /// The map moved by `delta` bytes (a partition-relative map made disk-relative).
    pub fn shifted(&self, delta: u64) -> ExtentMap {
        ExtentMap {
            extents: self
                .extents
                .iter()
                .map(|e| Extent::new(e.offset.saturating_add(delta), e.len))
                .collect(),
        }
    }

    /// Every extent widened outwards to multiples of `align` (a power of two).
    /// Copying more than asked is always safe; copying less never is.
    pub fn aligned_out(&self, align: u64) -> ExtentMap {
        assert!(align.is_power_of_two(), "alignment must be a power of two");
        let mask = align - 1;
        ExtentMap::from_unsorted(
            self.extents
                .iter()
                .map(|e| {
                    let start = e.offset & !mask;
                    let end = e.end().saturating_add(mask) & !mask;
                    Extent::new(start, end - start)
                })
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a ExtentMap {
    type Item = &'a Extent;
    type IntoIter = std::slice::Iter<'a, Extent>;
    fn into_iter(self) -> Self::IntoIter {
        self.extents.iter()
    }
}

impl FromIterator<Extent> for ExtentMap {
    fn from_iter<I: IntoIterator<Item = Extent>>(iter: I) -> Self {
        ExtentMap::from_unsorted(iter.into_iter().collect())
    }
}

/// Builds a map from extents pushed mostly in increasing order, merging as it
/// goes so that a bitmap scan over a huge filesystem never holds more than the
/// merged result. Out-of-order pushes are accepted and sorted at `build`.
#[derive(Debug, Default)]
pub struct ExtentBuilder {
    extents: Vec<Extent>,
    sorted: bool,
}

impl ExtentBuilder {
    pub fn new() -> Self {
        ExtentBuilder {
            extents: Vec::new(),
            sorted: true,
        }
    }

    pub fn push(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let e = Extent::new(offset, len.min(u64::MAX - offset));
        match self.extents.last_mut() {
            Some(last) if self.sorted && e.offset >= last.offset && e.offset <= last.end() => {
                let end = last.end().max(e.end());
                last.len = end - last.offset;
            }
            Some(last) => {
                if e.offset < last.offset {
                    self.sorted = false;
                }
                self.extents.push(e);
            }
            None => self.extents.push(e),
        }
    }

    pub fn push_extent(&mut self, e: Extent) {
        self.push(e.offset, e.len);
    }

    pub fn extend_map(&mut self, map: &ExtentMap) {
        for e in map {
            self.push_extent(*e);
        }
    }

    pub fn build(self) -> ExtentMap {
        if self.sorted {
            let mut extents = self.extents;
            extents.shrink_to_fit();
            ExtentMap { extents }
        } else {
            ExtentMap::from_unsorted(self.extents)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(v: &[(u64, u64)]) -> ExtentMap {
        ExtentMap::from_unsorted(v.iter().map(|&(o, l)| Extent::new(o, l)).collect())
    }

    fn pairs(m: &ExtentMap) -> Vec<(u64, u64)> {
        m.iter().map(|e| (e.offset, e.len)).collect()
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        let m = map(&[(10, 5), (0, 10), (30, 1), (14, 2), (40, 0)]);
        assert_eq!(pairs(&m), vec![(0, 16), (30, 1)]);
        assert_eq!(m.total_bytes(), 17);
        assert_eq!(m.end(), 31);
    }

    #[test]
    fn subtract_cuts_holes() {
        let m = map(&[(0, 100), (200, 100)]);
        let holes = map(&[(10, 10), (90, 120), (250, 10), (299, 50)]);
        assert_eq!(
            pairs(&m.subtract(&holes)),
            vec![(0, 10), (20, 70), (210, 40), (260, 39)]
        );
    }

    #[test]
    fn clip_and_contains() {
        let m = map(&[(0, 100), (200, 100)]);
        assert_eq!(
            pairs(&m.clip(Extent::new(50, 200))),
            vec![(50, 50), (200, 50)]
        );
        assert!(m.contains(0) && m.contains(99) && !m.contains(100) && m.contains(299));
        assert_eq!(m.bytes_in(Extent::new(50, 200)), 100);
    }

    #[test]
    fn aligned_out_widens() {
        let m = map(&[(1, 1), (1000, 100)]);
        assert_eq!(pairs(&m.aligned_out(512)), vec![(0, 1536)]);
        assert_eq!(
            pairs(&map(&[(1, 1), (5000, 1)]).aligned_out(512)),
            vec![(0, 512), (4608, 512)]
        );
    }

    #[test]
    fn builder_accepts_any_order() {
        let mut b = ExtentBuilder::new();
        b.push(100, 10);
        b.push(110, 10);
        b.push(0, 5);
        b.push(3, 5);
        assert_eq!(pairs(&b.build()), vec![(0, 8), (100, 20)]);
    }

    #[test]
    fn serializes_as_pairs() {
        let m = map(&[(0, 512), (4096, 512)]);
        let json = serde_json_like(&m);
        assert_eq!(json, "[[0,512],[4096,512]]");
    }

    fn serde_json_like(m: &ExtentMap) -> String {
        let parts: Vec<String> = m
            .iter()
            .map(|e| format!("[{},{}]", e.offset, e.len))
            .collect();
        format!("[{}]", parts.join(","))
    }

    fn reference_bits(v: &[(u64, u64)], size: u64) -> Vec<bool> {
        let mut bits = vec![false; size as usize];
        for &(o, l) in v {
            for b in o..(o + l).min(size) {
                bits[b as usize] = true;
            }
        }
        bits
    }

    fn bits_of(m: &ExtentMap, size: u64) -> Vec<bool> {
        reference_bits(&pairs(m), size)
    }

    proptest! {
        #[test]
        fn normalized_and_equal_to_bitset(v in prop::collection::vec((0u64..500, 0u64..60), 0..40)) {
            let m = map(&v);
            for w in m.extents().windows(2) {
                prop_assert!(w[0].end() < w[1].offset, "sorted, merged, not adjacent");
            }
            prop_assert!(m.iter().all(|e| e.len > 0));
            prop_assert_eq!(bits_of(&m, 600), reference_bits(&v, 600));
        }

        #[test]
        fn set_operations_match_bitsets(
            a in prop::collection::vec((0u64..500, 0u64..60), 0..30),
            b in prop::collection::vec((0u64..500, 0u64..60), 0..30),
        ) {
            let (ma, mb) = (map(&a), map(&b));
            let (ba, bb) = (reference_bits(&a, 600), reference_bits(&b, 600));
            let union: Vec<bool> = ba.iter().zip(&bb).map(|(x, y)| *x || *y).collect();
            let diff: Vec<bool> = ba.iter().zip(&bb).map(|(x, y)| *x && !*y).collect();
            prop_assert_eq!(bits_of(&ma.union(&mb), 600), union);
            prop_assert_eq!(bits_of(&ma.subtract(&mb), 600), diff);
            let mut builder = ExtentBuilder::new();
            for &(o, l) in &a { builder.push(o, l); }
            prop_assert_eq!(builder.build(), ma);
        }
    }
}
