//! XAPI data: object references, the records the client reads and the enums it sets.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

macro_rules! object_ref {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// XAPI's null reference (`OpaqueRef:NULL`), or empty.
            pub fn is_null(&self) -> bool {
                self.0.is_empty() || self.0 == NULL_REF
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_string())
            }
        }
    };
}

pub const NULL_REF: &str = "OpaqueRef:NULL";

object_ref!(/// A VM (or template).
    VmRef);
object_ref!(/// A virtual disk image.
    VdiRef);
object_ref!(/// A virtual block device (VM <-> VDI).
    VbdRef);
object_ref!(/// A virtual network interface.
    VifRef);
object_ref!(/// A storage repository.
    SrRef);
object_ref!(/// A network.
    NetworkRef);
object_ref!(/// A task.
    TaskRef);
object_ref!(/// A pool.
    PoolRef);
object_ref!(/// A host.
    HostRef);
object_ref!(/// A TLS certificate record.
    CertificateRef);

pub type StringMap = BTreeMap<String, String>;

/// XAPI integers arrive as JSON numbers over JSON-RPC, as strings over XML-RPC bridges.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Float(f64),
        Text(String),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        // Whole numbers only; XAPI never sends fractions for integer fields.
        Int::Float(f) if f.fract() == 0.0 => Ok(f as i64),
        Int::Float(f) => Err(serde::de::Error::custom(format!(
            "expected an integer, got {f}"
        ))),
        Int::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Float {
        Number(f64),
        Text(String),
    }
    match Float::deserialize(d)? {
        Float::Number(n) => Ok(n),
        Float::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// A storage repository, as far as choosing one goes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SrRecord {
    pub uuid: String,
    pub name_label: String,
    pub name_description: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content_type: String,
    pub shared: bool,
    #[serde(deserialize_with = "int")]
    pub physical_size: i64,
    #[serde(deserialize_with = "int")]
    pub physical_utilisation: i64,
    #[serde(deserialize_with = "int")]
    pub virtual_allocation: i64,
    pub other_config: StringMap,
}

/// A network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NetworkRecord {
    pub uuid: String,
    pub name_label: String,
    pub name_description: String,
    pub bridge: String,
    #[serde(rename = "MTU", deserialize_with = "int")]
    pub mtu: i64,
    pub other_config: StringMap,
}

/// A virtual disk image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VdiRecord {
    pub uuid: String,
    pub name_label: String,
    pub name_description: String,
    #[serde(rename = "SR")]
    pub sr: SrRef,
    #[serde(deserialize_with = "int")]
    pub virtual_size: i64,
    #[serde(deserialize_with = "int")]
    pub physical_utilisation: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub sharable: bool,
    pub read_only: bool,
    pub other_config: StringMap,
    pub sm_config: StringMap,
    pub tags: Vec<String>,
}

/// A VM, the fields conversion sets and checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[allow(non_snake_case)]
pub struct VmRecord {
    pub uuid: String,
    pub name_label: String,
    pub name_description: String,
    pub is_a_template: bool,
    pub power_state: String,
    #[serde(deserialize_with = "int")]
    pub VCPUs_max: i64,
    #[serde(deserialize_with = "int")]
    pub VCPUs_at_startup: i64,
    #[serde(deserialize_with = "int")]
    pub memory_static_min: i64,
    #[serde(deserialize_with = "int")]
    pub memory_static_max: i64,
    #[serde(deserialize_with = "int")]
    pub memory_dynamic_min: i64,
    #[serde(deserialize_with = "int")]
    pub memory_dynamic_max: i64,
    pub HVM_boot_params: StringMap,
    pub platform: StringMap,
    pub blocked_operations: StringMap,
    pub other_config: StringMap,
    pub tags: Vec<String>,
    pub VBDs: Vec<VbdRef>,
    pub VIFs: Vec<VifRef>,
}

/// A virtual block device.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VbdRecord {
    pub uuid: String,
    #[serde(rename = "VM")]
    pub vm: VmRef,
    #[serde(rename = "VDI")]
    pub vdi: VdiRef,
    pub userdevice: String,
    pub bootable: bool,
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub empty: bool,
    pub other_config: StringMap,
}

/// A virtual network interface.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VifRecord {
    pub uuid: String,
    pub device: String,
    #[serde(rename = "network")]
    pub network: NetworkRef,
    #[serde(rename = "VM")]
    pub vm: VmRef,
    #[serde(rename = "MAC")]
    pub mac: String,
    #[serde(rename = "MTU", deserialize_with = "int")]
    pub mtu: i64,
    pub other_config: StringMap,
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    #[default]
    Pending,
    Success,
    Failure,
    Cancelling,
    Cancelled,
}

impl TaskStatus {
    /// True once the task can no longer change.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Success | TaskStatus::Failure | TaskStatus::Cancelled
        )
    }
}

/// A task.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskRecord {
    pub uuid: String,
    pub name_label: String,
    pub name_description: String,
    pub status: TaskStatus,
    #[serde(deserialize_with = "float")]
    pub progress: f64,
    pub result: String,
    pub error_info: Vec<String>,
    pub other_config: StringMap,
}

/// A host of the pool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HostRecord {
    pub uuid: String,
    pub name_label: String,
    pub hostname: String,
    pub address: String,
}

/// A TLS certificate the pool knows (hosts' own, trusted CAs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CertificateRecord {
    pub uuid: String,
    pub name: String,
    /// `host`, `host_internal` or `ca`.
    #[serde(rename = "type")]
    pub kind: String,
    pub host: HostRef,
    pub not_before: String,
    pub not_after: String,
    /// Upper-case colon-separated SHA-256 (`AB:CD:...`).
    pub fingerprint_sha256: String,
    /// Older hosts: SHA-256 in the same form, before `fingerprint_sha256` existed.
    pub fingerprint: String,
}

impl CertificateRecord {
    /// The SHA-256 fingerprint, from whichever field the host fills.
    pub fn sha256(&self) -> Option<crate::Fingerprint> {
        [&self.fingerprint_sha256, &self.fingerprint]
            .into_iter()
            .find_map(|f| f.parse().ok())
    }
}

/// Firmware the VM boots with (`HVM_boot_params:firmware`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub fn as_str(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

/// Secure Boot setting (`platform:secureboot`); meaningful with UEFI only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureBoot {
    On,
    Off,
    Auto,
}

impl SecureBoot {
    pub fn as_str(self) -> &'static str {
        match self {
            SecureBoot::On => "true",
            SecureBoot::Off => "false",
            SecureBoot::Auto => "auto",
        }
    }
}

/// How the body of an import is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Every byte of the disk, in order.
    Raw,
    /// XAPI's chunked raw: `{u64 offset; u32 length}` little-endian frames, all-zero end.
    ChunkedRaw,
    /// A dynamic VHD; only mapped sectors are written.
    Vhd,
}

impl ImportFormat {
    /// The `format` query value.
    pub fn format_param(self) -> &'static str {
        match self {
            ImportFormat::Raw | ImportFormat::ChunkedRaw => "raw",
            ImportFormat::Vhd => "vhd",
        }
    }
}

/// How an export is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Raw,
    Vhd,
}

impl ExportFormat {
    pub fn format_param(self) -> &'static str {
        match self {
            ExportFormat::Raw => "raw",
            ExportFormat::Vhd => "vhd",
        }
    }
}

/// A new VDI (`VDI.create`).
#[derive(Debug, Clone)]
pub struct VdiSpec {
    pub sr: SrRef,
    pub name_label: String,
    pub name_description: String,
    pub virtual_size: u64,
    pub other_config: StringMap,
}

/// A new VBD (`VBD.create`), always a read-write disk.
#[derive(Debug, Clone)]
pub struct VbdSpec {
    pub vm: VmRef,
    pub vdi: VdiRef,
    /// "0", "1", ...; "3" is kept for the CD drive by convention.
    pub userdevice: String,
    pub bootable: bool,
    pub other_config: StringMap,
}

/// A new VIF (`VIF.create`).
#[derive(Debug, Clone)]
pub struct VifSpec {
    pub vm: VmRef,
    pub network: NetworkRef,
    /// One of `VM.get_allowed_VIF_devices`.
    pub device: String,
    /// Keep the source NIC's MAC; empty lets XAPI choose one.
    pub mac: String,
    pub mtu: u32,
    pub other_config: StringMap,
}

/// The VDI ref out of a task result (`<value>OpaqueRef:...</value>` or bare).
pub fn ref_from_task_result(result: &str) -> Option<String> {
    let text = result.trim();
    let text = text.strip_prefix("<value>").unwrap_or(text);
    let text = text.strip_suffix("</value>").unwrap_or(text).trim();
    (!text.is_empty() && text != NULL_REF).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_come_as_numbers_or_strings() {
        let vdi: VdiRecord = serde_json::from_value(
            serde_json::json!({"virtual_size": "1024", "physical_utilisation": 7}),
        )
        .unwrap();
        assert_eq!((vdi.virtual_size, vdi.physical_utilisation), (1024, 7));
        let bad = serde_json::from_value::<VdiRecord>(serde_json::json!({"virtual_size": "ten"}));
        assert!(bad.is_err());
    }

    #[test]
    fn task_record_parses_status_and_progress() {
        let task: TaskRecord = serde_json::from_value(serde_json::json!({
            "status": "failure", "progress": "0.5", "error_info": ["VDI_IO_ERROR", "Device I/O errors"],
            "unknown_field": 1
        }))
        .unwrap();
        assert_eq!(task.status, TaskStatus::Failure);
        assert!(task.status.is_finished() && !TaskStatus::Cancelling.is_finished());
        assert_eq!(task.progress, 0.5);
        assert_eq!(task.error_info.len(), 2);
    }

    #[test]
    fn task_results_yield_refs() {
        assert_eq!(
            ref_from_task_result("<value>OpaqueRef:abc</value>").as_deref(),
            Some("OpaqueRef:abc")
        );
        assert_eq!(
            ref_from_task_result(" OpaqueRef:abc ").as_deref(),
            Some("OpaqueRef:abc")
        );
        assert_eq!(ref_from_task_result(""), None);
        assert_eq!(ref_from_task_result("<value>OpaqueRef:NULL</value>"), None);
    }

    #[test]
    fn null_refs_are_detected() {
        assert!(SrRef::from(NULL_REF).is_null());
        assert!(SrRef::from("").is_null());
        assert!(!SrRef::from("OpaqueRef:1").is_null());
    }

    #[test]
    fn certificate_fingerprint_from_either_field() {
        let fp = crate::Fingerprint::of_der(b"x");
        let rec = CertificateRecord {
            fingerprint: fp.to_string(),
            ..Default::default()
        };
        assert_eq!(rec.sha256(), Some(fp));
        let rec = CertificateRecord {
            fingerprint_sha256: fp.to_string(),
            ..Default::default()
        };
        assert_eq!(rec.sha256(), Some(fp));
        assert_eq!(CertificateRecord::default().sha256(), None);
    }
}
