//! What a program needs from the dynamic linker: its interpreter (PT_INTERP)
//! and the shared libraries it names (DT_NEEDED), read from the ELF itself.

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::Endianness;

/// The dynamic-linking needs of one ELF file; both empty for a static one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub interpreter: Option<String>,
    pub libraries: Vec<String>,
}

/// Reads `data` as a 64-bit ELF file.
pub fn needs(data: &[u8]) -> Result<Needs, object::read::Error> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    let mut out = Needs::default();
    for ph in header.program_headers(endian, data)? {
        if let Some(interp) = ph.interpreter(endian, data)? {
            out.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(endian, data)?;
    if let Some((entries, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for d in entries {
            if d.tag32(endian) == Some(elf::DT_NEEDED) {
                let name = d.string(endian, strings)?;
                out.libraries
                    .push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_is_an_error() {
        assert!(needs(b"#!/bin/sh\necho hi\n").is_err());
    }

    /// The host is Debian too: its `true` is dynamic and needs libc.
    #[test]
    fn a_dynamic_program_names_libc_and_the_interpreter() {
        let n = needs(&std::fs::read("/bin/true").unwrap()).unwrap();
        assert!(n.libraries.iter().any(|l| l == "libc.so.6"), "{n:?}");
        assert!(
            n.interpreter
                .as_deref()
                .is_some_and(|i| i.contains("ld-linux")),
            "{n:?}"
        );
    }
}
