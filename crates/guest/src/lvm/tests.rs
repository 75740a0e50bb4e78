use super::*;

const VG: &str = r#"vg0 {
id = "INaBDm-8EO2-Rtuq-INLM-Mzwg-Ky1L-4MLNtj"
seqno = 3
status = ["RESIZEABLE", "READ", "WRITE"]
extent_size = 8192	# 4 Megabytes
physical_volumes {
pv0 {
id = "rITn1c-Wj4g-mK97-kbxW-IueE-vT9v-YeW6Hf"
device = "/dev/sda3"	# Hint only
pe_start = 2048
pe_count = 49
}
pv1 {
id = "zzzzzz-Wj4g-mK97-kbxW-IueE-vT9v-YeW6Hf"
pe_start = 2048
}
}
logical_volumes {
root {
segment_count = 2
segment2 {
start_extent = 10
extent_count = 5
type = "striped"
stripe_count = 1
stripes = [
"pv0", 20
]
}
segment1 {
start_extent = 0
extent_count = 10
type = "striped"
stripe_count = 1
stripes = ["pv0", 10]
}
}
swap {
segment_count = 1
segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv1", 0] }
}
gap {
segment_count = 2
segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }
segment2 { start_extent = 2 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 30] }
}
mirror { segment_count = 1 segment1 { start_extent = 0 extent_count = 2 type = "raid1" } }
}
}
contents = "Text Format Volume Group"
version = 1
"#;

#[test]
fn finds_linear_volumes_and_refuses_the_rest() {
    let root = metadata::parse(VG).unwrap();
    let lvs = volumes_from_metadata(&root, "rITn1cWj4gmK97kbxWIueEvT9vYeW6Hf").unwrap();
    let find = |n: &str| lvs.iter().find(|l| l.name == n).unwrap().placement.clone();
    let mib4 = 4 << 20;
    assert_eq!(
        find("root"),
        Placement::Linear {
            offset: 2048 * 512 + 10 * mib4,
            size: 15 * mib4
        }
    );
    assert!(matches!(find("swap"), Placement::Unreachable(r) if r.contains("more than one PV")));
    assert!(matches!(find("gap"), Placement::Unreachable(r) if r.contains("contiguous")));
    assert!(matches!(find("mirror"), Placement::Unreachable(r) if r.contains("raid1")));
    assert_eq!(lvs[0].vg, "vg0");
}

#[test]
fn bad_metadata_is_an_error_not_a_panic() {
    for text in [
        "vg {",
        "vg { a = }",
        "vg { a = [ 1, 2 }",
        "\"x",
        "vg { physical_volumes { } }",
        "}",
    ] {
        let parsed = metadata::parse(text);
        if let Ok(root) = parsed {
            assert!(volumes_from_metadata(&root, "x").is_err(), "{text}");
        }
    }
}

#[test]
fn a_file_without_label_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pv");
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    assert!(logical_volumes(&path)
        .unwrap_err()
        .contains("no LVM2 label"));
}
