//! What the xenlift appliance's boot media hold, shared by the image builder
//! (which writes them) and the agent (which customizes and reads them):
//! a reproducible `newc` cpio writer for the initramfs, and the embed area
//! that carries an answer file inside a finished ISO.

pub mod cpio;
pub mod date;
pub mod embed;

/// Where an answer file sits inside the initramfs (`xenlift pxe customize`
/// appends a cpio archive holding it; the kernel unpacks both archives).
pub const INITRD_ANSWER_PATH: &str = "etc/xenlift/answer.toml";

/// The file inside the ISO9660 tree whose bytes are the embed area.
pub const ISO_EMBED_PATH: &str = "xenlift/answer.area";
