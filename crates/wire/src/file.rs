//! Writing a stream to a local file (`convert --to dir:`): zero pages of
//! the stream become holes, as `qemu-img convert` leaves them, so a file
//! target costs no more page cache or disk than the data it holds.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use crate::zero::is_zero;
use crate::{EncodedStream, StreamReport, WireError};

const PAGE: u64 = 4096;

/// Writes at increasing positions, skipping whole zero pages.
struct SparseFile<'a> {
    file: &'a File,
    pos: u64,
}

impl Write for SparseFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let base = self.pos;
        let mut i = 0;
        let mut run: Option<usize> = None; // start in `buf` of bytes to write
        while i < buf.len() {
            // Pieces end on page boundaries of the file; only a whole zero
            // page is skipped.
            let n = ((PAGE - (base + i as u64) % PAGE) as usize).min(buf.len() - i);
            let piece = buf.get(i..i + n).unwrap_or_default();
            if n as u64 == PAGE && is_zero(piece) {
                if let Some(start) = run.take() {
                    self.file
                        .write_all_at(buf.get(start..i).unwrap_or_default(), base + start as u64)?;
                }
            } else if run.is_none() {
                run = Some(i);
            }
            i += n;
        }
        if let Some(start) = run {
            self.file
                .write_all_at(buf.get(start..).unwrap_or_default(), base + start as u64)?;
        }
        self.pos = base + buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl EncodedStream {
    /// Writes the whole stream into `file` from its start (the file is
    /// truncated first; zero pages become holes), flushes it to disk and
    /// returns the report.
    pub fn write_to_file(self, file: &File) -> Result<StreamReport, WireError> {
        let io_err = |written, source| WireError::Write { written, source };
        file.set_len(0).map_err(|e| io_err(0, e))?;
        let mut out = SparseFile { file, pos: 0 };
        let report = self.write_to(&mut out)?;
        file.set_len(out.pos).map_err(|e| io_err(out.pos, e))?;
        file.sync_all().map_err(|e| io_err(out.pos, e))?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    use extents::ExtentMap;

    use crate::{BlockPlan, EncodedStream, Format, BLOCK_SIZE};

    #[test]
    fn sparse_file_holds_the_stream_and_skips_zero_pages() {
        let size = 6 * BLOCK_SIZE + 1024;
        let mut disk = vec![0u8; size as usize];
        disk[5] = 1;
        disk[(3 * BLOCK_SIZE + 4095) as usize] = 2;
        disk[(size - 1) as usize] = 3;
        let plan = BlockPlan::full(size, &ExtentMap::single(0, size));
        let mut expected = Vec::new();
        EncodedStream::start(disk.clone(), plan.clone(), Format::RawChunked)
            .unwrap()
            .write_to(&mut expected)
            .unwrap();

        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &vec![0xee; expected.len() + 9999]).unwrap();
        EncodedStream::start(disk, plan, Format::RawChunked)
            .unwrap()
            .write_to_file(&file)
            .unwrap();
        let mut got = Vec::new();
        std::io::Seek::rewind(&mut file).unwrap();
        file.read_to_end(&mut got).unwrap();
        assert!(got == expected, "same bytes, old content gone");
        let allocated = file.metadata().unwrap().blocks() * 512;
        assert!(
            allocated < 1 << 20,
            "zero pages are holes: {allocated} bytes allocated"
        );
    }
}
