//! The exFAT boot region: geometry, flags and the boot checksum.

use extents::ReadAt;

use crate::fs::le::{u16_at, u32_at, u64_at};
use crate::fs::MapError;

const VOLUME_DIRTY: u16 = 0x0002;
const ACTIVE_FAT: u16 = 0x0001;
/// The FAT entry of a bad cluster; values above it end a chain.
pub const BAD_CLUSTER: u32 = 0xFFFF_FFF7;

/// The fields of the main boot sector the map needs, checked for
/// consistency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExfatBoot {
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub volume_sectors: u64,
    pub fat_offset_sectors: u64,
    pub fat_length_sectors: u64,
    pub fat_count: u8,
    pub heap_offset_sectors: u64,
    pub cluster_count: u64,
    pub root_cluster: u64,
    /// Which FAT holds the live chains (TexFAT volumes have two).
    pub active_fat: u8,
}

fn doubt(msg: String) -> MapError {
    MapError::Doubt(format!("exFAT boot sector: {msg}"))
}

impl ExfatBoot {
    /// Reads and checks the main boot region of `vol`.
    pub fn read(vol: &dyn ReadAt) -> Result<Self, MapError> {
        let sector0 = vol.read_vec(0, 512)?;
        if sector0.get(3..11) != Some(b"EXFAT   ".as_slice()) {
            return Err(doubt("no \"EXFAT\" file system name".into()));
        }
        if sector0
            .get(11..64)
            .is_some_and(|z| z.iter().any(|&b| b != 0))
        {
            return Err(doubt("bytes 11..64 are not zero".into()));
        }
        let bps_shift = u32::from(sector0.get(108).copied().unwrap_or(0));
        let spc_shift = u32::from(sector0.get(109).copied().unwrap_or(0));
        if !(9..=12).contains(&bps_shift) || spc_shift > 25 - bps_shift {
            return Err(doubt(format!(
                "sector shift {bps_shift}, cluster shift {spc_shift}"
            )));
        }
        let bytes_per_sector = 1u64 << bps_shift;
        let region = vol.read_vec(0, 12 * bytes_per_sector as usize)?;
        verify_checksum(&region, bytes_per_sector as usize)?;

        let boot = ExfatBoot {
            bytes_per_sector,
            sectors_per_cluster: 1u64 << spc_shift,
            volume_sectors: u64_at(&region, 72),
            fat_offset_sectors: u64::from(u32_at(&region, 80)),
            fat_length_sectors: u64::from(u32_at(&region, 84)),
            heap_offset_sectors: u64::from(u32_at(&region, 88)),
            cluster_count: u64::from(u32_at(&region, 92)),
            root_cluster: u64::from(u32_at(&region, 96)),
            fat_count: region.get(110).copied().unwrap_or(0),
            active_fat: (u16_at(&region, 106) & ACTIVE_FAT) as u8,
        };
        let revision = u16_at(&region, 104);
        if revision >> 8 != 1 {
            return Err(doubt(format!(
                "revision {}.{:02}",
                revision >> 8,
                revision & 0xFF
            )));
        }
        if u16_at(&region, 106) & VOLUME_DIRTY != 0 {
            return Err(MapError::Doubt(
                "exFAT volume is marked dirty (not cleanly unmounted): with no journal, \
                 its allocation bitmap may miss clusters in use; run fsck.exfat on the \
                 source to map it"
                    .into(),
            ));
        }
        boot.check(vol.size())?;
        Ok(boot)
    }

    fn check(&self, vol_size: u64) -> Result<(), MapError> {
        if !(1..=2).contains(&self.fat_count) || self.active_fat >= self.fat_count {
            return Err(doubt(format!(
                "{} FATs, active FAT {}",
                self.fat_count, self.active_fat
            )));
        }
        // u32 fields times small factors: no overflow in u64.
        let fats_end =
            self.fat_offset_sectors + self.fat_length_sectors * u64::from(self.fat_count);
        let heap_end = self.heap_offset_sectors + self.cluster_count * self.sectors_per_cluster;
        if self.fat_offset_sectors < 24
            || fats_end > self.heap_offset_sectors
            || heap_end > self.volume_sectors
        {
            return Err(doubt(format!(
                "FAT at sector {} for {} sectors x {}, cluster heap at {} for {} clusters, \
                 volume of {} sectors",
                self.fat_offset_sectors,
                self.fat_length_sectors,
                self.fat_count,
                self.heap_offset_sectors,
                self.cluster_count,
                self.volume_sectors
            )));
        }
        if self.fat_bytes() < (self.cluster_count + 2) * 4 {
            return Err(doubt(format!(
                "a FAT of {} bytes for {} clusters",
                self.fat_bytes(),
                self.cluster_count
            )));
        }
        if self.cluster_count > u64::from(BAD_CLUSTER - 2) {
            return Err(doubt(format!("{} clusters", self.cluster_count)));
        }
        if !(2..self.cluster_count + 2).contains(&self.root_cluster) {
            return Err(doubt(format!(
                "root directory at cluster {}",
                self.root_cluster
            )));
        }
        let fs_bytes = self.volume_sectors.saturating_mul(self.bytes_per_sector);
        if fs_bytes > vol_size {
            return Err(doubt(format!(
                "the filesystem is {fs_bytes} bytes but its volume only {vol_size} (truncated?)"
            )));
        }
        Ok(())
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }

    pub fn fat_bytes(&self) -> u64 {
        self.fat_length_sectors * self.bytes_per_sector
    }

    /// Byte offset of FAT copy `index`.
    pub fn fat_offset(&self, index: u8) -> u64 {
        (self.fat_offset_sectors + u64::from(index) * self.fat_length_sectors)
            * self.bytes_per_sector
    }

    /// Byte offset of cluster `n` (n >= 2).
    pub fn cluster_offset(&self, n: u64) -> u64 {
        (self.heap_offset_sectors + n.saturating_sub(2) * self.sectors_per_cluster)
            * self.bytes_per_sector
    }
}

/// The boot checksum: sectors 0..11 summed with a rotate, skipping the
/// fields that change at run time (VolumeFlags, PercentInUse); sector 11
/// repeats the result.
fn verify_checksum(region: &[u8], bytes_per_sector: usize) -> Result<(), MapError> {
    let summed = region.get(..11 * bytes_per_sector).unwrap_or_default();
    let sum = boot_checksum(summed);
    let stored = region.get(11 * bytes_per_sector..).unwrap_or_default();
    let mismatch = stored
        .chunks_exact(4)
        .map(|c| u32_at(c, 0))
        .find(|&v| v != sum);
    match (stored.len(), mismatch) {
        (0, _) => Err(doubt("boot region too short".into())),
        (_, Some(v)) => Err(MapError::Doubt(format!(
            "exFAT boot checksum mismatch: the checksum sector says {v:#010x}, \
             the boot region sums to {sum:#010x}"
        ))),
        (_, None) => Ok(()),
    }
}

pub fn boot_checksum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 106 | 107 | 112))
        .fold(0u32, |sum, (_, &b)| {
            sum.rotate_right(1).wrapping_add(u32::from(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_skips_runtime_fields() {
        let mut a = vec![7u8; 11 * 512];
        let base = boot_checksum(&a);
        a[106] = 1;
        a[107] = 2;
        a[112] = 99;
        assert_eq!(boot_checksum(&a), base);
        a[113] = 0;
        assert_ne!(boot_checksum(&a), base);
    }
}
