//! `xenlift inspect` end to end: the binary on images made by the real
//! tools, its JSON document checked field by field and for consistency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testkit::{run, sh, sparse_image, tempdir};

const MIB: u64 = 1 << 20;

fn xenlift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xenlift"))
        .args(args)
        .output()
        .unwrap()
}

fn inspect_json(disks: &[&Path]) -> Value {
    let mut args = vec!["inspect", "--json", "--extents"];
    let paths: Vec<String> = disks.iter().map(|d| d.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = xenlift(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GPT: vfat ESP, a 2 MiB gap, ext4, swap; the rest of the disk unused.
fn gpt_disk(dir: &Path) -> PathBuf {
    let img = dir.join("gpt.img");
    sparse_image(&img, 128 * MIB);
    run(
        "sgdisk",
        &[
            "-n1:2048:+16M",
            "-t1:ef00",
            "-c1:ESP",
            "-n2:38912:+32M",
            "-t2:8300",
            "-c2:root",
            "-n3:0:+8M",
            "-t3:8200",
            "-c3:swap",
            img.to_str().unwrap(),
        ],
    );
    sh(&format!(
        "mkfs.vfat -n ESP --offset 2048 {} 16384 >/dev/null",
        img.display()
    ));
    sh(&format!(
        "mkfs.ext4 -q -L root -E offset={} {} 32M",
        19 * MIB,
        img.display()
    ));
    let swap = testkit::Loop::attach(&img, 51 * MIB, Some(8 * MIB), false);
    run("mkswap", &["-L", "swap", swap.path()]);
    img
}

fn mbr_disk(dir: &Path) -> PathBuf {
    let img = dir.join("mbr.img");
    sparse_image(&img, 64 * MIB);
    sh(&format!(
        "printf 'label: dos\\nstart=2048, size=8MiB, type=83\\ntype=5\\nsize=8MiB, type=83\\n' | sfdisk -q {}",
        img.display()
    ));
    img
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The checks every disk of the document passes.
fn check_disk(d: &Value) {
    for key in [
        "path",
        "kind",
        "size",
        "logical_sector_size",
        "physical_sector_size",
        "model",
        "serial",
        "table",
        "partitions",
        "whole_disk_reason",
        "copy_bytes",
        "extents",
    ] {
        assert!(d.get(key).is_some(), "disk field {key} missing: {d}");
    }
    for key in ["kind", "uuid", "protective_mbr", "warnings"] {
        assert!(d["table"].get(key).is_some(), "table field {key} missing");
    }
    let size = u(&d["size"]);
    let extents: Vec<(u64, u64)> = d["extents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (u(&e[0]), u(&e[1])))
        .collect();
    let total: u64 = extents.iter().map(|e| e.1).sum();
    assert_eq!(
        u(&d["copy_bytes"]),
        total,
        "copy_bytes is the sum of the extents"
    );
    for w in extents.windows(2) {
        assert!(w[0].0 + w[0].1 < w[1].0, "extents sorted and merged: {w:?}");
    }
    assert!(
        extents.iter().all(|&(o, l)| l > 0 && o + l <= size),
        "extents inside the disk"
    );
    let covered = |from: u64, len: u64| -> u64 {
        extents
            .iter()
            .map(|&(o, l)| (o + l).min(from + len).saturating_sub(o.max(from)))
            .sum()
    };
    assert_eq!(covered(0, MIB), MIB, "first MiB");
    for p in d["partitions"].as_array().unwrap() {
        for key in [
            "number", "start", "size", "type", "name", "uuid", "role", "content", "map",
        ] {
            assert!(p.get(key).is_some(), "partition field {key} missing: {p}");
        }
        if let Some(map) = p["map"].as_object() {
            assert!(map.contains_key("method") && map.contains_key("reason"));
            let copy = u(&map["copy_bytes"]);
            assert!(copy <= u(&p["size"]));
            assert!(
                covered(u(&p["start"]), u(&p["size"])) >= copy,
                "partition map in the disk map: {p}"
            );
        }
        if let Some(c) = p["content"].as_object() {
            for key in ["kind", "uuid", "label", "version", "note"] {
                assert!(c.contains_key(key), "content field {key} missing: {p}");
            }
        }
    }
}

#[test]
fn json_document_is_complete_and_consistent() {
    let dir = tempdir().unwrap();
    let gpt = gpt_disk(dir.path());
    let whole = dir.path().join("whole.img");
    sparse_image(&whole, 32 * MIB);
    run("mkfs.ext4", &["-q", "-L", "whole", whole.to_str().unwrap()]);
    let mbr = mbr_disk(dir.path());
    let doc = inspect_json(&[&gpt, &whole, &mbr]);
    let disks = doc["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 3);
    for d in disks {
        check_disk(d);
    }

    let g = &disks[0];
    assert_eq!(g["path"], gpt.display().to_string());
    assert_eq!(g["kind"], "image-file");
    assert_eq!(u(&g["size"]), 128 * MIB);
    assert_eq!(g["table"]["kind"], "gpt");
    assert_eq!(g["table"]["protective_mbr"], "protective");
    assert_eq!(g["whole_disk_reason"], Value::Null);
    let kinds: Vec<&str> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["vfat", "ext4", "swap"]);
    let names: Vec<&str> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ESP", "root", "swap"]);
    let p1 = &g["partitions"][0];
    assert_eq!(p1["type"], "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    assert_eq!(p1["content"]["label"], "ESP");
    assert_eq!(p1["content"]["version"], "FAT16");
    assert_eq!(u(&p1["start"]), MIB);
    let extents: Vec<(u64, u64)> = g["extents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (u(&e[0]), u(&e[1])))
        .collect();
    let covered = |from: u64, len: u64| -> u64 {
        extents
            .iter()
            .map(|&(o, l)| (o + l).min(from + len).saturating_sub(o.max(from)))
            .sum()
    };
    assert_eq!(
        covered(128 * MIB - 33 * 512, 33 * 512),
        33 * 512,
        "GPT backup"
    );
    assert_eq!(
        covered(17 * MIB, 2 * MIB),
        2 * MIB,
        "gap between partitions 1 and 2"
    );

    let w = &disks[1];
    assert_eq!(w["table"]["kind"], "none");
    let p0 = &w["partitions"][0];
    assert_eq!(
        (u(&p0["number"]), u(&p0["start"]), u(&p0["size"])),
        (0, 0, 32 * MIB)
    );
    assert_eq!(p0["role"], "wholedisk");
    assert_eq!(p0["content"]["kind"], "ext4");
    assert_eq!(p0["content"]["label"], "whole");

    let m = &disks[2];
    assert_eq!(m["table"]["kind"], "mbr");
    let parts = m["partitions"].as_array().unwrap();
    let numbers: Vec<u64> = parts.iter().map(|p| u(&p["number"])).collect();
    assert_eq!(numbers, [1, 2, 5]);
    assert_eq!(parts[0]["type"], "0x83");
    assert_eq!(parts[1]["role"], "extended");
    assert_eq!(parts[1]["content"], Value::Null);
    assert_eq!(parts[1]["map"], Value::Null);
    assert_eq!(parts[2]["role"], "logical");

    // Without --extents the field is absent.
    let out = xenlift(&["inspect", "--json", gpt.to_str().unwrap()]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["disks"][0].get("extents").is_none());
}

#[test]
fn table_for_people() {
    let dir = tempdir().unwrap();
    let gpt = gpt_disk(dir.path());
    let out = xenlift(&["inspect", gpt.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        gpt.to_str().unwrap(),
        "GPT",
        "EFI System",
        "vfat FAT16 \"ESP\"",
        "ext4 \"root\"",
        "swap",
        "copy ",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn errors_are_plain() {
    let out = xenlift(&["inspect", "/nonexistent/disk.img"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("opening /nonexistent/disk.img: no such file or device"),
        "{err}"
    );
}
