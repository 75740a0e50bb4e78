//! A volume group as its text metadata describes it: physical volumes,
//! logical volumes and their segments. Only what the map needs is kept.

use super::text::{self, Section, Value};

/// Why metadata text could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error(transparent)]
    Syntax(#[from] text::SyntaxError),
    #[error("LVM metadata: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(msg.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgMetadata {
    pub name: String,
    pub id: String,
    pub seqno: u64,
    /// Extent size in 512-byte sectors.
    pub extent_sectors: u64,
    pub pvs: Vec<PvMeta>,
    pub lvs: Vec<LvMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvMeta {
    /// The name segments use for it ("pv0").
    pub name: String,
    /// The PV UUID without dashes, as in the label.
    pub id: String,
    /// First physical extent, in sectors from the PV start.
    pub pe_start: u64,
    pub pe_count: u64,
    /// Flagged MISSING by LVM itself.
    pub missing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvMeta {
    pub name: String,
    pub visible: bool,
    pub segments: Vec<SegmentMeta>,
}

impl LvMeta {
    pub fn extent_count(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.extent_count)
            .fold(0, u64::saturating_add)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub start_extent: u64,
    pub extent_count: u64,
    pub kind: SegmentKind,
}

/// A place a segment's data lives: physical extent (or LV extent) `start`
/// of the PV or LV called `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub target: String,
    pub start: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentKind {
    /// Linear (one stripe) or striped; `stripe_sectors` is 0 for linear.
    Striped {
        stripe_sectors: u64,
        stripes: Vec<Area>,
    },
    /// Any other type: what it references, for copying it whole.
    Other {
        type_name: String,
        /// (name, number) pairs found in its lists: PV or LV areas.
        areas: Vec<Area>,
        /// Every string in the segment: names of the LVs it uses.
        names: Vec<String>,
    },
}

impl SegmentKind {
    pub fn type_name(&self) -> &str {
        match self {
            SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => "linear",
            SegmentKind::Striped { .. } => "striped",
            SegmentKind::Other { type_name, .. } => type_name,
        }
    }
}

impl VgMetadata {
    /// Parses the text of one metadata area.
    pub fn parse(text: &str) -> Result<Self, MetadataError> {
        let top = text::parse(text)?;
        if top.str("contents") != Some("Text Format Volume Group") {
            return Err(invalid("not \"Text Format Volume Group\" contents"));
        }
        if top.int("version") != Some(1) {
            return Err(invalid(format!(
                "format version {:?}",
                top.value("version")
            )));
        }
        let (name, vg) = top
            .sections()
            .next()
            .ok_or_else(|| invalid("no volume group section"))?;
        if vg.str("format").is_some_and(|f| f != "lvm2") {
            return Err(invalid(format!(
                "volume group format {:?}",
                vg.str("format")
            )));
        }
        let extent_sectors = uint(vg, "extent_size", name)?;
        if extent_sectors == 0 {
            return Err(invalid(format!("VG {name}: extent size 0")));
        }
        let pvs = vg
            .section("physical_volumes")
            .ok_or_else(|| invalid(format!("VG {name} has no physical_volumes")))?
            .sections()
            .map(|(n, s)| pv(n, s))
            .collect::<Result<Vec<_>, _>>()?;
        let lvs = match vg.section("logical_volumes") {
            Some(lvs) => lvs
                .sections()
                .map(|(n, s)| lv(n, s))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(VgMetadata {
            name: name.to_string(),
            id: vg
                .str("id")
                .ok_or_else(|| invalid(format!("VG {name} has no id")))?
                .to_string(),
            seqno: uint(vg, "seqno", name)?,
            extent_sectors,
            pvs,
            lvs,
        })
    }
}

fn uint(s: &Section, key: &str, owner: &str) -> Result<u64, MetadataError> {
    s.int(key)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| invalid(format!("{owner}: {key} is missing or negative")))
}

fn has(s: &Section, key: &str, flag: &str) -> bool {
    s.list(key)
        .is_some_and(|l| l.iter().any(|v| matches!(v, Value::Str(f) if f == flag)))
}

fn pv(name: &str, s: &Section) -> Result<PvMeta, MetadataError> {
    let id = s
        .str("id")
        .ok_or_else(|| invalid(format!("PV {name} has no id")))?;
    Ok(PvMeta {
        name: name.to_string(),
        id: id.replace('-', ""),
        pe_start: uint(s, "pe_start", name)?,
        pe_count: uint(s, "pe_count", name)?,
        missing: has(s, "flags", "MISSING") || has(s, "status", "MISSING"),
    })
}

fn lv(name: &str, s: &Section) -> Result<LvMeta, MetadataError> {
    let mut segments = s
        .sections()
        .filter(|(k, _)| k.starts_with("segment"))
        .map(|(k, seg)| segment(&format!("{name}/{k}"), seg))
        .collect::<Result<Vec<_>, _>>()?;
    segments.sort_by_key(|g| g.start_extent);
    Ok(LvMeta {
        name: name.to_string(),
        visible: has(s, "status", "VISIBLE"),
        segments,
    })
}

fn segment(owner: &str, s: &Section) -> Result<SegmentMeta, MetadataError> {
    let start_extent = uint(s, "start_extent", owner)?;
    let extent_count = uint(s, "extent_count", owner)?;
    let type_name = s
        .str("type")
        .ok_or_else(|| invalid(format!("{owner} has no type")))?;
    let kind = if type_name == "striped" {
        let stripes = areas(s.list("stripes").unwrap_or_default());
        let count = uint(s, "stripe_count", owner)?;
        if count == 0 || stripes.len() as u64 != count {
            return Err(invalid(format!(
                "{owner}: stripe_count {count} with {} stripes",
                stripes.len()
            )));
        }
        let stripe_sectors = if count > 1 {
            uint(s, "stripe_size", owner)?
        } else {
            0
        };
        if count > 1 && stripe_sectors == 0 {
            return Err(invalid(format!("{owner}: stripe size 0")));
        }
        SegmentKind::Striped {
            stripe_sectors,
            stripes,
        }
    } else {
        let mut areas_found = Vec::new();
        for (_, n) in &s.entries {
            if let text::Node::Value(Value::List(l)) = n {
                areas_found.extend(areas(l));
            }
        }
        SegmentKind::Other {
            type_name: type_name.to_string(),
            areas: areas_found,
            names: s.strings().into_iter().map(str::to_string).collect(),
        }
    };
    Ok(SegmentMeta {
        start_extent,
        extent_count,
        kind,
    })
}

/// `"name", number` pairs of a list.
fn areas(list: &[Value]) -> Vec<Area> {
    list.windows(2)
        .filter_map(|w| match w {
            [Value::Str(target), Value::Int(start)] => {
                u64::try_from(*start).ok().map(|start| Area {
                    target: target.clone(),
                    start,
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"vg1 {
id = "IjxNFF-kXfy-bc1V-qnbt-pX65-QiHG-Wpi3VA"
seqno = 5
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
extent_size = 8192
physical_volumes {
pv0 {
id = "Ruyatt-Z102-qsf9-71ze-GV41-SbE7-qPeOzb"
status = ["ALLOCATABLE"]
flags = []
pe_start = 2048
pe_count = 15
}
}
logical_volumes {
str {
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 4
type = "striped"
stripe_count = 2
stripe_size = 128
stripes = [
"pv0", 2,
"pv0", 9
]
}
}
r1 {
status = ["READ", "WRITE", "VISIBLE"]
segment1 {
start_extent = 0
extent_count = 1
type = "raid1"
device_count = 2
raids = ["r1_rmeta_0", "r1_rimage_0", "r1_rmeta_1", "r1_rimage_1"]
}
}
}
}
contents = "Text Format Volume Group"
version = 1
"#;

    #[test]
    fn reads_pvs_lvs_and_segments() {
        let vg = VgMetadata::parse(TEXT).unwrap();
        assert_eq!(
            (vg.name.as_str(), vg.seqno, vg.extent_sectors),
            ("vg1", 5, 8192)
        );
        assert_eq!(vg.pvs[0].id, "RuyattZ102qsf971zeGV41SbE7qPeOzb");
        assert_eq!((vg.pvs[0].pe_start, vg.pvs[0].pe_count), (2048, 15));
        let str_lv = &vg.lvs[0];
        assert!(str_lv.visible);
        assert_eq!(str_lv.segments[0].kind.type_name(), "striped");
        match &str_lv.segments[0].kind {
            SegmentKind::Striped {
                stripe_sectors,
                stripes,
            } => {
                assert_eq!(*stripe_sectors, 128);
                assert_eq!(
                    stripes[1],
                    Area {
                        target: "pv0".into(),
                        start: 9
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match &vg.lvs[1].segments[0].kind {
            SegmentKind::Other {
                type_name, names, ..
            } => {
                assert_eq!(type_name, "raid1");
                assert!(names.contains(&"r1_rimage_1".to_string()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_inconsistent_stripes() {
        let bad = TEXT.replace("stripe_count = 2", "stripe_count = 3");
        assert!(VgMetadata::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("stripe_count 3"));
        let neg = TEXT.replace("pe_count = 15", "pe_count = -1");
        assert!(VgMetadata::parse(&neg).is_err());
    }
}
