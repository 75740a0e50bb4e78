//! XAPI client: JSON-RPC, import and export transfers, TLS with certificate pinning.
//!
//! Blocking (one thread per disk). Knows nothing of filesystems or disks: a transfer body
//! is any `Read + Send` of a length known up front.

mod error;
mod http;
mod lookup;
mod network;
mod pool;
mod rpc;
mod secret;
mod session;
mod storage;
mod task;
mod tls;
mod transfer;
mod types;
mod upload;
mod vm;

pub use error::{codes, Error, Result, XapiError};
pub use http::Options;
pub use lookup::looks_like_uuid;
pub use secret::Secret;
pub use session::{Connect, Session};
pub use tls::{fetch_fingerprint, Fingerprint, Trust};
pub use transfer::{Export, ImportRequest, Imported, Progress};
pub use types::{
    ref_from_task_result, CertificateRecord, CertificateRef, ExportFormat, Firmware, HostRecord,
    HostRef, ImportFormat, NetworkRecord, NetworkRef, PoolRef, SecureBoot, SrRecord, SrRef,
    StringMap, TaskRecord, TaskRef, TaskStatus, VbdRecord, VbdRef, VbdSpec, VdiRecord, VdiRef,
    VdiSpec, VifRecord, VifRef, VifSpec, VmRecord, VmRef, NULL_REF,
};
pub use vm::{VmSettings, BLANK_TEMPLATE};
