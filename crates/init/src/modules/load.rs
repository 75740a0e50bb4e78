//! Putting one module file into the kernel: `finit_module` for a plain
//! `.ko`, `init_module` on the decompressed bytes for `.ko.xz` (the kernel's
//! own decompression is not enabled in every distribution kernel). The
//! signature travels inside the decompressed image, so lockdown under
//! Secure Boot still checks it.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use nix::errno::Errno;
use nix::kmod::{finit_module, init_module, ModuleInitFlags};

pub fn insert(path: &Path) -> io::Result<()> {
    let params = CString::default();
    let file = File::open(path)?;
    let result = if path.extension().is_some_and(|e| e == "xz") {
        let mut image = Vec::new();
        lzma_rs::xz_decompress(&mut BufReader::new(file), &mut image)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
        init_module(&image, &params)
    } else {
        finit_module(&file, &params, ModuleInitFlags::empty())
    };
    match result {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}
