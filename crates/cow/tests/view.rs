//! The FUSE-served view, as loop devices and filesystems see it. Needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use extents::{ExtentBuilder, ExtentMap, FileAt, ReadAt};
use sha2::{Digest, Sha256};
use xenlift_cow::{CowView, Store};

fn sha(path: &Path) -> String {
    let mut f = File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_only(path: &Path) -> Arc<dyn ReadAt> {
    Arc::new(FileAt::from_file(File::open(path).unwrap()).unwrap())
}

fn byte_diff(a: &Path, b: &Path) -> ExtentMap {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(a.len(), b.len());
    let mut m = ExtentBuilder::new();
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            m.push(k as u64, 1);
        }
    }
    m.build()
}

#[test]
fn writes_through_the_file_never_reach_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.img");
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let before = sha(&src);

    let view = CowView::new(read_only(&src), Store::Memory).unwrap();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(view.path())
        .unwrap();
    assert_eq!(f.metadata().unwrap().len(), data.len() as u64);
    f.write_all_at(b"hello", 1_000_003).unwrap();
    f.write_all_at(&vec![0u8; 70_000], 4 << 20).unwrap();
    // Equal to what is there: written, but not a change.
    f.write_all_at(&data[100..612], 100).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let copy = dir.path().join("view.img");
    std::fs::copy(view.path(), &copy).unwrap();
    let mut expect = data.clone();
    expect[1_000_003..1_000_008].copy_from_slice(b"hello");
    expect[4 << 20..(4 << 20) + 70_000].fill(0);
    assert_eq!(std::fs::read(&copy).unwrap(), expect);
    assert_eq!(view.changed().unwrap(), byte_diff(&src, &copy));
    // Unchanged areas read as the source.
    let mut buf = vec![0u8; 4096];
    view.overlay().read_exact_at(&mut buf, 2 << 20).unwrap();
    assert_eq!(buf, data[2 << 20..(2 << 20) + 4096]);
    drop(view);
    assert_eq!(sha(&src), before, "the source changed");
}

#[test]
fn a_partition_loop_mounted_through_the_view_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("disk.img");
    File::create(&src).unwrap().set_len(64 << 20).unwrap();
    let table = "label: dos\nstart=2048, size=100352, type=83\n";
    let mut sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(&src)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(table.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let (offset, size) = (2048 * 512, 100352 * 512);
    let loop_src = run(
        "losetup",
        &[
            "--find",
            "--show",
            "-o",
            &offset.to_string(),
            "--sizelimit",
            &size.to_string(),
            src.to_str().unwrap(),
        ],
    );
    let loop_src = loop_src.trim().to_string();
    let mk = Command::new("mkfs.ext4")
        .args(["-q", "-F", &loop_src])
        .status();
    run("losetup", &["-d", &loop_src]);
    assert!(mk.unwrap().success());
    let before = sha(&src);

    let view = CowView::new(read_only(&src), Store::ScratchIn(dir.path().to_path_buf())).unwrap();
    let dev = run(
        "losetup",
        &[
            "--find",
            "--show",
            "-o",
            &offset.to_string(),
            "--sizelimit",
            &size.to_string(),
            view.path().to_str().unwrap(),
        ],
    );
    let dev = dev.trim().to_string();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount").arg(&dev).arg(&mnt).status().unwrap();
    let wrote = mounted.success()
        && std::fs::write(mnt.join("note.txt"), b"written through the view").is_ok();
    if mounted.success() {
        run("umount", &[mnt.to_str().unwrap()]);
    }
    run("losetup", &["-d", &dev]);
    assert!(
        mounted.success() && wrote,
        "mounting and writing through the view"
    );

    let changed = view.changed().unwrap();
    assert!(!changed.is_empty());
    assert!(changed
        .extents()
        .iter()
        .all(|e| e.offset >= offset && e.offset + e.len <= offset + size));
    // The change is in the view: a copy of it holds the file.
    let copy = dir.path().join("view.img");
    std::fs::copy(view.path(), &copy).unwrap();
    assert_eq!(changed, byte_diff(&src, &copy));
    drop(view);
    assert_eq!(sha(&src), before, "the source changed");
    let dev = run(
        "losetup",
        &[
            "--find",
            "--show",
            "-r",
            "-o",
            &offset.to_string(),
            "--sizelimit",
            &size.to_string(),
            copy.to_str().unwrap(),
        ],
    );
    let dev = dev.trim().to_string();
    let text = run("debugfs", &["-R", "cat /note.txt", &dev]);
    run("losetup", &["-d", &dev]);
    assert_eq!(text, "written through the view");
}

#[test]
fn discards_and_zeroing_through_a_loop_device_land_in_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.img");
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8 | 1).collect();
    std::fs::write(&src, &data).unwrap();
    let before = sha(&src);
    let view = CowView::new(read_only(&src), Store::Memory).unwrap();
    let file = view.path().to_str().unwrap().to_string();

    // On the file: a punched hole and a zeroed range (fallocate(2)).
    run(
        "fallocate",
        &["--punch-hole", "-o", "4096", "-l", "8192", &file],
    );
    run(
        "fallocate",
        &["--zero-range", "-o", "1048576", "-l", "65536", &file],
    );
    // Plain allocation inside the size succeeds and changes nothing; past
    // the fixed size it is refused.
    run("fallocate", &["-o", "0", "-l", "4096", &file]);
    let grow = Command::new("fallocate")
        .args(["-o", "0", "-l", &(16u32 << 20).to_string(), &file])
        .output()
        .unwrap();
    assert!(!grow.status.success(), "the view grew");
    // Through a loop device: write-zeroes requests, as ext4 sends them.
    let dev = run("losetup", &["--find", "--show", &file]);
    let dev = dev.trim().to_string();
    let zeroed = Command::new("blkdiscard")
        .args(["--zeroout", "-o", "3145728", "-l", "1048576", &dev])
        .output()
        .unwrap();
    run("losetup", &["-d", &dev]);
    assert!(
        zeroed.status.success(),
        "blkdiscard --zeroout: {}",
        String::from_utf8_lossy(&zeroed.stderr)
    );

    let copy = dir.path().join("view.img");
    std::fs::copy(view.path(), &copy).unwrap();
    let mut expect = data.clone();
    for (at, len) in [(4096, 8192), (1 << 20, 65536), (3 << 20, 1 << 20)] {
        expect[at..at + len].fill(0);
    }
    assert!(std::fs::read(&copy).unwrap() == expect, "the view's bytes");
    assert_eq!(view.changed().unwrap(), byte_diff(&src, &copy));
    drop(view);
    assert_eq!(sha(&src), before, "the source changed");
}
