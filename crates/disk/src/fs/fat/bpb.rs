//! The BIOS parameter block: where the FATs, the root directory and the
//! clusters are, and which FAT type the volume is.

use crate::fs::le::{u16_at, u32_at};
use crate::fs::MapError;

/// FAT12 volumes have fewer clusters than this, FAT16 fewer than
/// [`FAT16_LIMIT`] (the specification's rule, which Linux follows too).
const FAT12_LIMIT: u64 = 4085;
const FAT16_LIMIT: u64 = 65525;
/// The largest cluster count a 28-bit FAT32 entry can address.
const FAT32_MAX_CLUSTERS: u64 = 0x0FFF_FFF5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl FatType {
    /// Bits per FAT entry.
    pub fn entry_bits(self) -> u64 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }

    /// The entry value marking a bad cluster; values above it end a chain.
    pub fn bad_marker(self) -> u32 {
        match self {
            FatType::Fat12 => 0xFF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        }
    }
}

impl std::fmt::Display for FatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        })
    }
}

/// The layout of a FAT volume, checked for consistency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FatGeometry {
    pub fat_type: FatType,
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub reserved_sectors: u64,
    pub fat_count: u64,
    pub fat_sectors: u64,
    pub root_dir_sectors: u64,
    pub total_sectors: u64,
    /// Clusters in the data region; they are numbered from 2.
    pub clusters: u64,
    /// FAT copies whose entries are live (all of them unless FAT32
    /// mirroring is off, when only the active one is).
    pub live_fats: Vec<u64>,
}

fn doubt(msg: String) -> MapError {
    MapError::Doubt(format!("FAT boot sector: {msg}"))
}

impl FatGeometry {
    /// Reads the BPB of the first sector of a volume of `vol_size` bytes.
    pub fn parse(boot: &[u8], vol_size: u64) -> Result<Self, MapError> {
        let bytes_per_sector = u64::from(u16_at(boot, 11));
        if ![512, 1024, 2048, 4096].contains(&bytes_per_sector) {
            return Err(doubt(format!("{bytes_per_sector} bytes per sector")));
        }
        let sectors_per_cluster = u64::from(boot.get(13).copied().unwrap_or(0));
        if !sectors_per_cluster.is_power_of_two() {
            return Err(doubt(format!("{sectors_per_cluster} sectors per cluster")));
        }
        let reserved_sectors = u64::from(u16_at(boot, 14));
        if reserved_sectors == 0 {
            return Err(doubt("no reserved sectors".into()));
        }
        let fat_count = u64::from(boot.get(16).copied().unwrap_or(0));
        if !(1..=2).contains(&fat_count) {
            return Err(doubt(format!("{fat_count} FATs")));
        }
        let root_entries = u64::from(u16_at(boot, 17));
        let total16 = u64::from(u16_at(boot, 19));
        let fat16_sectors = u64::from(u16_at(boot, 22));
        let total32 = u64::from(u32_at(boot, 32));
        let total_sectors = if total16 != 0 { total16 } else { total32 };
        if total_sectors == 0 {
            return Err(doubt("a total sector count of 0".into()));
        }
        // Like Linux, a zero 16-bit FAT size means the FAT32 BPB follows.
        let is_fat32 = fat16_sectors == 0;
        let fat_sectors = if is_fat32 {
            u64::from(u32_at(boot, 36))
        } else {
            fat16_sectors
        };
        if fat_sectors == 0 {
            return Err(doubt("a FAT size of 0 sectors".into()));
        }
        if is_fat32 && root_entries != 0 {
            return Err(doubt(format!(
                "FAT32 with {root_entries} fixed root entries"
            )));
        }
        let root_dir_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
        let system_sectors = reserved_sectors + fat_count * fat_sectors + root_dir_sectors;
        if system_sectors >= total_sectors {
            return Err(doubt(format!(
                "{system_sectors} sectors of reserved area, FATs and root directory \
                 in a volume of {total_sectors} sectors"
            )));
        }
        let clusters = (total_sectors - system_sectors) / sectors_per_cluster;
        let fat_type = match (is_fat32, clusters) {
            (true, n) if n > FAT32_MAX_CLUSTERS => {
                return Err(doubt(format!("{n} clusters: too many for FAT32")))
            }
            (true, _) => FatType::Fat32,
            (false, n) if n < FAT12_LIMIT => FatType::Fat12,
            (false, n) if n < FAT16_LIMIT => FatType::Fat16,
            (false, n) => {
                return Err(doubt(format!(
                    "{n} clusters with a 16-bit FAT size field: too many for FAT12/16"
                )))
            }
        };
        if clusters == 0 {
            return Err(doubt("no clusters in the data region".into()));
        }
        let entries = fat_sectors * bytes_per_sector * 8 / fat_type.entry_bits();
        if entries < clusters + 2 {
            return Err(doubt(format!(
                "a {fat_type} of {fat_sectors} sectors holds {entries} entries, \
                 fewer than {} for {clusters} clusters",
                clusters + 2
            )));
        }
        let fs_bytes = total_sectors * bytes_per_sector;
        if fs_bytes > vol_size {
            return Err(doubt(format!(
                "the filesystem is {fs_bytes} bytes but its volume only {vol_size} \
                 (truncated?)"
            )));
        }
        let mut live_fats: Vec<u64> = (0..fat_count).collect();
        if is_fat32 {
            let version = u16_at(boot, 42);
            if version != 0 {
                return Err(doubt(format!("unknown FAT32 version {version:#x}")));
            }
            let root_cluster = u64::from(u32_at(boot, 44));
            if !(2..clusters + 2).contains(&root_cluster) {
                return Err(doubt(format!("root directory at cluster {root_cluster}")));
            }
            let ext_flags = u16_at(boot, 40);
            if ext_flags & 0x80 != 0 {
                let active = u64::from(ext_flags & 0x0F);
                if active >= fat_count {
                    return Err(doubt(format!(
                        "active FAT {active} of {fat_count} with mirroring off"
                    )));
                }
                live_fats = vec![active];
            }
        }
        Ok(FatGeometry {
            fat_type,
            bytes_per_sector,
            sectors_per_cluster,
            reserved_sectors,
            fat_count,
            fat_sectors,
            root_dir_sectors,
            total_sectors,
            clusters,
            live_fats,
        })
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * self.bytes_per_sector
    }

    /// Byte offset of FAT copy `index`.
    pub fn fat_offset(&self, index: u64) -> u64 {
        (self.reserved_sectors + index * self.fat_sectors) * self.bytes_per_sector
    }

    /// Byte offset of the data region (cluster 2): everything before it is
    /// filesystem metadata.
    pub fn data_start(&self) -> u64 {
        (self.reserved_sectors + self.fat_count * self.fat_sectors + self.root_dir_sectors)
            * self.bytes_per_sector
    }

    /// Byte offset of cluster `n` (n >= 2).
    pub fn cluster_offset(&self, n: u64) -> u64 {
        self.data_start() + n.saturating_sub(2) * self.cluster_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT16 boot sector: 512-byte sectors, 4 per cluster, 1 reserved,
    /// 2 FATs of 32 sectors, 512 root entries, 32768 sectors.
    fn fat16() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&1u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&32768u16.to_le_bytes());
        b[22..24].copy_from_slice(&32u16.to_le_bytes());
        b
    }

    #[test]
    fn parses_a_consistent_fat16() {
        let g = FatGeometry::parse(&fat16(), 32768 * 512).unwrap();
        assert_eq!(g.fat_type, FatType::Fat16);
        assert_eq!(g.root_dir_sectors, 32);
        assert_eq!(g.data_start(), (1 + 64 + 32) * 512);
        assert_eq!(g.clusters, (32768 - 97) / 4);
        assert_eq!(g.cluster_offset(2), g.data_start());
    }

    #[test]
    fn doubts_contradictions() {
        type Mutate = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Mutate)> = vec![
            ("bytes per sector", Box::new(|b| b[12] = 3)),
            ("sectors per cluster", Box::new(|b| b[13] = 3)),
            ("reserved", Box::new(|b| b[14] = 0)),
            ("FATs", Box::new(|b| b[16] = 0)),
            (
                "FAT size",
                Box::new(|b| b[22..24].copy_from_slice(&1u16.to_le_bytes())),
            ),
            (
                "truncated",
                Box::new(|b| b[19..21].copy_from_slice(&65535u16.to_le_bytes())),
            ),
        ];
        for (i, (what, mutate)) in cases.iter().enumerate() {
            let mut b = fat16();
            mutate(&mut b);
            let r = FatGeometry::parse(&b, 32768 * 512);
            assert!(
                matches!(r, Err(MapError::Doubt(_))),
                "case {i} ({what}): {r:?}"
            );
        }
    }

    #[test]
    fn too_many_clusters_for_a_16_bit_fat_is_doubt() {
        let mut b = fat16();
        b[13] = 1;
        b[19..21].copy_from_slice(&0u16.to_le_bytes());
        b[32..36].copy_from_slice(&200_000u32.to_le_bytes());
        b[22..24].copy_from_slice(&400u16.to_le_bytes());
        let err = FatGeometry::parse(&b, 200_000 * 512).unwrap_err();
        assert!(err.to_string().contains("too many for FAT12/16"), "{err}");
    }
}
