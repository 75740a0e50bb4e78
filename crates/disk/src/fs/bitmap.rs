//! Runs of set bits in an allocation bitmap (NTFS `$Bitmap`, the exFAT
//! allocation bitmap): bit `i` of byte `j` stands for unit `8 * j + i`.

/// Calls `run(first, count)` for every run of set bits among the first
/// `nbits` bits of `bytes`, numbering them from `base`. Runs are reported in
/// order; a run that continues into the next call is reported in two parts,
/// which an [`extents::ExtentBuilder`] merges again.
pub(crate) fn for_each_run(bytes: &[u8], base: u64, nbits: u64, mut run: impl FnMut(u64, u64)) {
    let nbits = nbits.min(bytes.len() as u64 * 8);
    let mut start: Option<u64> = None;
    let mut bit = 0u64;
    while bit < nbits {
        let byte = bytes.get((bit / 8) as usize).copied().unwrap_or(0);
        // Whole bytes of one value are the common case on big volumes.
        if bit % 8 == 0 && nbits - bit >= 8 && (byte == 0 || byte == 0xFF) {
            match (byte, start) {
                (0, Some(s)) => {
                    run(base + s, bit - s);
                    start = None;
                }
                (0xFF, None) => start = Some(bit),
                _ => {}
            }
            bit += 8;
            continue;
        }
        let set = byte & (1 << (bit % 8)) != 0;
        match (set, start) {
            (false, Some(s)) => {
                run(base + s, bit - s);
                start = None;
            }
            (true, None) => start = Some(bit),
            _ => {}
        }
        bit += 1;
    }
    if let Some(s) = start {
        run(base + s, nbits - s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn runs(bytes: &[u8], nbits: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for_each_run(bytes, 100, nbits, |s, n| out.push((s, n)));
        out
    }

    #[test]
    fn finds_runs_across_bytes() {
        assert_eq!(
            runs(&[0b1000_0110, 0xFF, 0x01, 0], 32),
            vec![(101, 2), (107, 10)]
        );
        assert_eq!(runs(&[0xFF, 0xFF], 12), vec![(100, 12)]);
        assert_eq!(runs(&[0xFF], 100), vec![(100, 8)]);
        assert!(runs(&[0, 0], 16).is_empty());
    }

    proptest! {
        #[test]
        fn equals_bit_by_bit(bytes in prop::collection::vec(any::<u8>(), 0..40), nbits in 0u64..400) {
            let mut expected = Vec::new();
            let limit = nbits.min(bytes.len() as u64 * 8);
            for b in 0..limit {
                if bytes[(b / 8) as usize] & (1 << (b % 8)) != 0 {
                    expected.push(b + 100);
                }
            }
            let mut got = Vec::new();
            for (s, n) in runs(&bytes, nbits) {
                got.extend(s..s + n);
            }
            prop_assert_eq!(got, expected);
        }
    }
}
