//! Where ext puts its fixed metadata: superblock backups, descriptor tables
//! (classic, reserved for growth, or meta_bg), all computed from the
//! superblock alone so the map never depends on the bitmaps for them.

use super::superblock::{compat, ro_compat, Superblock};

impl Superblock {
    /// First block of group `g`.
    pub fn group_first_block(&self, g: u64) -> u64 {
        self.first_data_block + g * self.blocks_per_group
    }

    /// Blocks in group `g` (the last group may be short).
    pub fn group_blocks(&self, g: u64) -> u64 {
        let first = self.group_first_block(g);
        self.blocks_per_group
            .min(self.blocks_count.saturating_sub(first))
    }

    /// Clusters in group `g`: bits of its block bitmap that mean something.
    pub fn group_clusters(&self, g: u64) -> u64 {
        self.group_blocks(g).div_ceil(self.cluster_ratio)
    }

    /// Whether group `g` holds a superblock (primary or backup).
    pub fn has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.compat & compat::SPARSE_SUPER2 != 0 {
            return self.backup_bgs.iter().any(|&b| u64::from(b) == g);
        }
        if g <= 1 || self.ro_compat & ro_compat::SPARSE_SUPER == 0 {
            return true;
        }
        if g % 2 == 0 {
            return false;
        }
        is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }

    /// Whether group `g` falls under the meta_bg descriptor layout.
    fn in_meta_bg(&self, g: u64) -> bool {
        self.meta_bg() && g >= self.first_meta_bg * self.descs_per_block()
    }

    /// Block runs `(first block, count)` at the start of group `g` that hold
    /// a superblock copy and descriptor blocks (with the reserved GDT blocks
    /// kept for online growth), as the kernel counts them.
    pub fn base_metadata(&self, g: u64) -> Vec<(u64, u64)> {
        let start = self.group_first_block(g);
        let has_super = self.has_super(g);
        let mut runs = Vec::new();
        if !self.in_meta_bg(g) {
            if has_super {
                let gdt = if self.meta_bg() {
                    self.first_meta_bg
                } else {
                    self.gdt_blocks()
                };
                runs.push((start, 1 + gdt + self.reserved_gdt_blocks));
            }
        } else {
            let dpb = self.descs_per_block();
            let first = g / dpb * dpb;
            let holds_desc = g == first || g == first + 1 || g == first + dpb - 1;
            let n = u64::from(has_super) + u64::from(holds_desc);
            runs.push((start, n));
        }
        runs.retain(|&(_, n)| n > 0);
        runs
    }

    /// Block holding descriptor block `nr` of the primary table.
    pub fn descriptor_block(&self, nr: u64) -> u64 {
        // The classic table follows the primary superblock's block.
        let sb_block = super::superblock::SB_OFFSET / self.block_size;
        if !self.meta_bg() || nr < self.first_meta_bg {
            return sb_block + 1 + nr;
        }
        let g = nr * self.descs_per_block();
        self.group_first_block(g) + u64::from(self.has_super(g))
    }
}

fn is_power_of(mut n: u64, base: u64) -> bool {
    while n > 1 && n % base == 0 {
        n /= base;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::is_power_of;

    #[test]
    fn powers() {
        assert!(is_power_of(1, 3) && is_power_of(27, 3) && is_power_of(49, 7));
        assert!(!is_power_of(15, 3) && !is_power_of(0, 5));
    }
}
