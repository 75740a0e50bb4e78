//! Swap maps on areas made by mkswap: only the header page is copied, and
//! the copy still carries the swap signature, UUID, label and bad-page list.
// Fixture code panics with context on purpose, like the test kit.
#![allow(clippy::unwrap_used)]

mod map_support;

use extents::{ExtentMap, ReadAt, Window};
use map_support::{apply, assert_inside, load, mutations, open};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use testkit::{copy_mapped, require, run, run_stdout, sparse_image, tempdir, TempDir};
use xenlift_disk::fs::swap;
use xenlift_disk::MapError;

const UUID: &str = "5d3b3c2e-6f0b-4c8e-9a51-0c0ffee00123";

fn mkswap(dir: &TempDir, size: u64, page: u64) -> PathBuf {
    require(&["mkswap", "blkid"]);
    let img = dir.path().join(format!("swap-{page}.img"));
    sparse_image(&img, size);
    run(
        "mkswap",
        &[
            "-L",
            "xenswap",
            "-U",
            UUID,
            "-p",
            &page.to_string(),
            img.to_str().unwrap(),
        ],
    );
    img
}

/// blkid's view (an independent reader): TYPE, UUID and LABEL.
fn blkid(img: &Path) -> Vec<String> {
    let out = run_stdout("blkid", &["-p", "-o", "export", img.to_str().unwrap()]);
    let mut keys: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("TYPE=") || l.starts_with("UUID=") || l.starts_with("LABEL="))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

#[test]
fn only_the_header_page_is_copied_and_identity_survives() {
    let dir = tempdir().unwrap();
    for page in [4096u64, 65536] {
        let size = 64 << 20;
        let img = mkswap(&dir, size, page);
        // A bad-page list inside the header page, as mkswap -c writes it.
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
            f.write_all_at(&3u32.to_le_bytes(), 1032).unwrap();
            for (i, bad) in [7u32, 9, 4000].iter().enumerate() {
                f.write_all_at(&bad.to_le_bytes(), 1536 + 4 * i as u64)
                    .unwrap();
            }
        }
        let map = swap::map(&open(&img)).unwrap();
        // Exactly mkswap's page: nothing else of a swap area is worth copying.
        assert_eq!(map, ExtentMap::single(0, page), "page size {page}");
        assert_inside(&map, size);

        let copy = dir.path().join(format!("copy-{page}.img"));
        copy_mapped(&img, &map, &copy, size);
        let seen = blkid(&copy);
        assert_eq!(seen, blkid(&img));
        assert!(
            seen.contains(&format!("UUID={UUID}")) && seen.contains(&"LABEL=xenswap".to_string()),
            "{seen:?}"
        );
        let header = open(&copy).read_vec(0, page as usize).unwrap();
        assert_eq!(header, open(&img).read_vec(0, page as usize).unwrap());
        assert_eq!(
            &header[1536..1548],
            &[7, 0, 0, 0, 9, 0, 0, 0, 0xa0, 0x0f, 0, 0]
        );
    }
}

fn doubt_reason(r: Result<ExtentMap, MapError>) -> String {
    match r {
        Err(MapError::Doubt(reason)) => reason,
        other => panic!("expected a doubt, got {other:?}"),
    }
}

#[test]
fn hibernation_old_format_and_truncation_are_whole_copies() {
    let dir = tempdir().unwrap();
    let img = mkswap(&dir, 8 << 20, 4096);
    let clean = open(&img).read_vec(0, 8 << 20).unwrap();
    for (sig, expect) in [
        (&b"S1SUSPEND\0"[..], "hibernation image (S1SUSPEND)"),
        (b"S2SUSPEND\0", "hibernation image"),
        (b"ULSUSPEND\0", "hibernation image"),
        (b"SWAP-SPACE", "version-0"),
    ] {
        let mut b = clean.clone();
        b[4086..4096].copy_from_slice(sig);
        let reason = doubt_reason(swap::map(&b));
        assert!(reason.contains(expect), "{sig:?}: {reason}");
    }
    let mut b = clean.clone();
    b[..8].copy_from_slice(&[0xed, 0xc3, 0x02, 0xe9, 0x98, 0x56, 0xe5, 0x0c]);
    assert!(doubt_reason(swap::map(&b)).contains("TuxOnIce"));
    let short = Window::new(open(&img), 0, 4 << 20);
    assert!(doubt_reason(swap::map(&short)).contains("truncated"));
}

fn image() -> &'static Arc<Vec<u8>> {
    static IMG: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    IMG.get_or_init(|| {
        let dir = tempdir().unwrap();
        load(&mkswap(&dir, 1 << 20, 4096))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_swap_headers_never_panic(m in mutations(1 << 20, vec![(0, 4096), (1024, 64), (4086, 10), (65526, 10)])) {
        let img = apply(image(), &m);
        if let Ok(map) = swap::map(&img) {
            assert_inside(&map, img.size());
        }
    }
}
