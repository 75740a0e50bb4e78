//! What a finished stream reports: sizes, counts and SHA-256 hashes.

use std::sync::Arc;

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use crate::hash::Hash;
use crate::plan::{BlockPlan, PlanKind};
use crate::{Format, BLOCK_SIZE};

/// The hash of every sent block, in block order. Held as 32 bytes per sent
/// block (32 MiB for a fully used 2 TiB disk); the indices come from the plan.
#[derive(Clone, Debug)]
pub struct BlockHashes {
    plan: Arc<BlockPlan>,
    hashes: Vec<Hash>,
}

impl BlockHashes {
    pub(crate) fn new(plan: Arc<BlockPlan>, hashes: Vec<Hash>) -> BlockHashes {
        BlockHashes { plan, hashes }
    }

    /// `(block index, SHA-256 of the block as sent)` in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Hash)> + '_ {
        self.plan.blocks().map(|b| b.index).zip(self.hashes.iter())
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Serialized as `[[block_index, "hex sha256"], ...]`.
impl Serialize for BlockHashes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.hashes.len()))?;
        for (index, hash) in self.iter() {
            seq.serialize_element(&(index, hex::encode(hash)))?;
        }
        seq.end()
    }
}

fn hex_opt<S: Serializer>(h: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
    match h {
        Some(h) => s.serialize_str(&hex::encode(h)),
        None => s.serialize_none(),
    }
}

fn kind_name<S: Serializer>(k: &PlanKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match k {
        PlanKind::Full => "full",
        PlanKind::Delta => "delta",
    })
}

/// The outcome of one stream, complete once its last byte was read.
#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    pub format: Format,
    #[serde(serialize_with = "kind_name")]
    pub kind: PlanKind,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// Bytes of the encoded stream (the upload's Content-Length).
    pub stream_bytes: u64,
    /// Bytes of disk data in the planned ranges.
    pub data_bytes: u64,
    pub block_size: u64,
    pub blocks_sent: u64,
    pub zero_blocks_skipped: u64,
    /// SHA-256 of each sent block: the whole block as the stream carries it
    /// (planned ranges, zeros elsewhere; the last block short).
    pub block_hashes: BlockHashes,
    /// SHA-256 over the block hashes of the whole disk (see the crate's
    /// README section); only for full plans, where the target's content is
    /// known everywhere.
    #[serde(serialize_with = "hex_opt")]
    pub disk_sha256: Option<Hash>,
}

impl StreamReport {
    pub(crate) fn new(
        format: Format,
        plan: Arc<BlockPlan>,
        stream_bytes: u64,
        hashes: Vec<Hash>,
        disk: Hash,
    ) -> StreamReport {
        StreamReport {
            format,
            kind: plan.kind(),
            size: plan.size(),
            stream_bytes,
            data_bytes: plan.data_bytes(),
            block_size: BLOCK_SIZE,
            blocks_sent: plan.blocks_sent(),
            zero_blocks_skipped: plan.zero_blocks_skipped(),
            disk_sha256: (plan.kind() == PlanKind::Full).then_some(disk),
            block_hashes: BlockHashes::new(plan, hashes),
        }
    }
}
