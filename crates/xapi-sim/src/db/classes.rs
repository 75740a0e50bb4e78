//! The field tables of the classes xapi-sim serves (a subset of XAPI's
//! datamodel: the fields clients read, with XAPI's names, types and access).

use super::class_vm::VM;
use super::schema::{
    dyn_, rw, st, Class, Def, Field, Ty, MSS, SS, TASK_STATUS, VBD_MODES, VBD_TYPES, VDI_TYPES,
};

const REQ: Def = Def::Required;
const E: Def = Def::Empty;
const NUL: Def = Def::Null;
const NO: Def = Def::Bool(false);
const BLANK: Def = Def::Str("");

const SESSION_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    dyn_("this_host", Ty::Ref("host"), NUL),
    dyn_("this_user", Ty::Ref("user"), NUL),
    dyn_("last_active", Ty::DateTime, Def::Epoch),
    dyn_("pool", Ty::Bool, NO),
    rw("other_config", MSS, E),
    dyn_("is_local_superuser", Ty::Bool, Def::Bool(true)),
    dyn_("subject", Ty::Ref("subject"), NUL),
    dyn_("validation_time", Ty::DateTime, Def::Epoch),
    dyn_("auth_user_sid", Ty::Str, BLANK),
    dyn_("auth_user_name", Ty::Str, BLANK),
    dyn_("rbac_permissions", SS, E),
    dyn_("tasks", Ty::Reverse("task", "session"), E),
    dyn_("parent", Ty::Ref("session"), NUL),
    dyn_("originator", Ty::Str, BLANK),
];

const POOL_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    rw("name_label", Ty::Str, BLANK),
    rw("name_description", Ty::Str, BLANK),
    dyn_("master", Ty::Ref("host"), NUL),
    rw("default_SR", Ty::Ref("SR"), NUL),
    rw("suspend_image_SR", Ty::Ref("SR"), NUL),
    rw("crash_dump_SR", Ty::Ref("SR"), NUL),
    rw("other_config", MSS, E),
    dyn_("ha_enabled", Ty::Bool, NO),
    rw("tags", SS, E),
    dyn_("restrictions", MSS, E),
    dyn_("cpu_info", MSS, E),
];

const HOST_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    rw("name_label", Ty::Str, BLANK),
    rw("name_description", Ty::Str, BLANK),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    dyn_("API_version_major", Ty::Int, Def::Int(2)),
    dyn_("API_version_minor", Ty::Int, Def::Int(21)),
    dyn_("API_version_vendor", Ty::Str, Def::Str("XenSource")),
    dyn_("enabled", Ty::Bool, Def::Bool(true)),
    dyn_("software_version", MSS, E),
    rw("other_config", MSS, E),
    dyn_("resident_VMs", Ty::Reverse("VM", "resident_on"), E),
    dyn_("PBDs", Ty::Reverse("PBD", "host"), E),
    st("hostname", Ty::Str, BLANK),
    st("address", Ty::Str, BLANK),
    dyn_("cpu_info", MSS, E),
    dyn_("edition", Ty::Str, Def::Str("xenserver-premium")),
    dyn_("certificates", Ty::Reverse("Certificate", "host"), E),
    rw("tags", SS, E),
    dyn_("https_only", Ty::Bool, NO),
];

const SR_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    rw("name_label", Ty::Str, BLANK),
    rw("name_description", Ty::Str, BLANK),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    dyn_("VDIs", Ty::Reverse("VDI", "SR"), E),
    dyn_("PBDs", Ty::Reverse("PBD", "SR"), E),
    dyn_("virtual_allocation", Ty::Int, Def::Int(0)),
    dyn_("physical_utilisation", Ty::Int, Def::Int(0)),
    st("physical_size", Ty::Int, Def::Int(0)),
    st("type", Ty::Str, BLANK),
    st("content_type", Ty::Str, BLANK),
    dyn_("shared", Ty::Bool, NO),
    rw("other_config", MSS, E),
    rw("tags", SS, E),
    rw("sm_config", MSS, E),
    dyn_("default_vdi_visibility", Ty::Bool, Def::Bool(true)),
    dyn_("local_cache_enabled", Ty::Bool, NO),
    dyn_("clustered", Ty::Bool, NO),
    dyn_("is_tools_sr", Ty::Bool, NO),
];

const PBD_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    st("host", Ty::Ref("host"), REQ),
    st("SR", Ty::Ref("SR"), REQ),
    st("device_config", MSS, E),
    dyn_("currently_attached", Ty::Bool, Def::Bool(true)),
    rw("other_config", MSS, E),
];

const VDI_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    rw("name_label", Ty::Str, BLANK),
    rw("name_description", Ty::Str, BLANK),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    st("SR", Ty::Ref("SR"), REQ),
    dyn_("VBDs", Ty::Reverse("VBD", "VDI"), E),
    dyn_("crash_dumps", SS, E),
    st("virtual_size", Ty::Int, REQ),
    dyn_("physical_utilisation", Ty::Int, Def::Int(0)),
    st("type", Ty::Enum(VDI_TYPES), REQ),
    st("sharable", Ty::Bool, REQ),
    st("read_only", Ty::Bool, REQ),
    rw("other_config", MSS, REQ),
    dyn_("storage_lock", Ty::Bool, NO),
    dyn_("location", Ty::Str, BLANK),
    dyn_("managed", Ty::Bool, Def::Bool(true)),
    dyn_("missing", Ty::Bool, NO),
    dyn_("parent", Ty::Ref("VDI"), NUL),
    rw("xenstore_data", MSS, E),
    rw("sm_config", MSS, E),
    dyn_("is_a_snapshot", Ty::Bool, NO),
    dyn_("snapshot_of", Ty::Ref("VDI"), NUL),
    dyn_("snapshots", Ty::Reverse("VDI", "snapshot_of"), E),
    dyn_("snapshot_time", Ty::DateTime, Def::Epoch),
    rw("tags", SS, E),
    dyn_("allow_caching", Ty::Bool, NO),
    dyn_("on_boot", Ty::Str, Def::Str("persist")),
    dyn_("metadata_of_pool", Ty::Ref("pool"), NUL),
    dyn_("metadata_latest", Ty::Bool, NO),
    dyn_("is_tools_iso", Ty::Bool, NO),
    dyn_("cbt_enabled", Ty::Bool, NO),
];

const VBD_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    st("VM", Ty::Ref("VM"), REQ),
    st("VDI", Ty::Ref("VDI"), REQ),
    st("device", Ty::Str, BLANK),
    rw("userdevice", Ty::Str, REQ),
    rw("bootable", Ty::Bool, REQ),
    st("mode", Ty::Enum(VBD_MODES), REQ),
    rw("type", Ty::Enum(VBD_TYPES), REQ),
    rw("unpluggable", Ty::Bool, Def::Bool(true)),
    dyn_("storage_lock", Ty::Bool, NO),
    st("empty", Ty::Bool, REQ),
    dyn_("reserved", Ty::Bool, NO),
    rw("other_config", MSS, REQ),
    st("currently_attached", Ty::Bool, NO),
    dyn_("status_code", Ty::Int, Def::Int(0)),
    dyn_("status_detail", Ty::Str, BLANK),
    dyn_("runtime_properties", MSS, E),
    rw("qos_algorithm_type", Ty::Str, REQ),
    rw("qos_algorithm_params", MSS, REQ),
    dyn_("qos_supported_algorithms", SS, E),
    dyn_("metrics", Ty::Ref("VBD_metrics"), NUL),
];

const VIF_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    st("device", Ty::Str, REQ),
    st("network", Ty::Ref("network"), REQ),
    st("VM", Ty::Ref("VM"), REQ),
    st("MAC", Ty::Str, REQ),
    st("MTU", Ty::Int, REQ),
    dyn_("reserved", Ty::Bool, NO),
    rw("other_config", MSS, REQ),
    st("currently_attached", Ty::Bool, NO),
    dyn_("status_code", Ty::Int, Def::Int(0)),
    dyn_("status_detail", Ty::Str, BLANK),
    dyn_("runtime_properties", MSS, E),
    rw("qos_algorithm_type", Ty::Str, REQ),
    rw("qos_algorithm_params", MSS, REQ),
    dyn_("qos_supported_algorithms", SS, E),
    dyn_("metrics", Ty::Ref("VIF_metrics"), NUL),
    dyn_("MAC_autogenerated", Ty::Bool, NO),
    st("locking_mode", Ty::Str, Def::Str("network_default")),
    st("ipv4_allowed", SS, E),
    st("ipv6_allowed", SS, E),
    st("ipv4_configuration_mode", Ty::Str, Def::Str("None")),
    st("ipv4_addresses", SS, E),
    st("ipv4_gateway", Ty::Str, BLANK),
    st("ipv6_configuration_mode", Ty::Str, Def::Str("None")),
    st("ipv6_addresses", SS, E),
    st("ipv6_gateway", Ty::Str, BLANK),
];

const NETWORK_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    rw("name_label", Ty::Str, BLANK),
    rw("name_description", Ty::Str, BLANK),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    dyn_("VIFs", Ty::Reverse("VIF", "network"), E),
    dyn_("PIFs", SS, E),
    rw("MTU", Ty::Int, Def::Int(1500)),
    rw("other_config", MSS, E),
    st("bridge", Ty::Str, BLANK),
    st("managed", Ty::Bool, Def::Bool(true)),
    rw("tags", SS, E),
    dyn_("default_locking_mode", Ty::Str, Def::Str("unlocked")),
    dyn_("assigned_ips", MSS, E),
    dyn_("purpose", SS, E),
];

const TASK_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    dyn_("name_label", Ty::Str, BLANK),
    dyn_("name_description", Ty::Str, BLANK),
    dyn_("allowed_operations", SS, E),
    dyn_("current_operations", MSS, E),
    dyn_("created", Ty::DateTime, Def::Epoch),
    dyn_("finished", Ty::DateTime, Def::Epoch),
    dyn_("status", Ty::Enum(TASK_STATUS), Def::Str("pending")),
    dyn_("resident_on", Ty::Ref("host"), NUL),
    dyn_("progress", Ty::Float, Def::Float(0.0)),
    dyn_("type", Ty::Str, Def::Str("<none/>")),
    dyn_("result", Ty::Str, BLANK),
    dyn_("error_info", SS, E),
    rw("other_config", MSS, E),
    dyn_("subtask_of", Ty::Ref("task"), NUL),
    dyn_("subtasks", Ty::Reverse("task", "subtask_of"), E),
    dyn_("backtrace", Ty::Str, Def::Str("()")),
    dyn_("session", Ty::Ref("session"), NUL),
];

const CERTIFICATE_FIELDS: &[Field] = &[
    st("uuid", Ty::Str, REQ),
    dyn_("name", Ty::Str, BLANK),
    dyn_(
        "type",
        Ty::Enum(&["ca", "host", "host_internal", "pinned"]),
        Def::Str("host"),
    ),
    st("host", Ty::Ref("host"), NUL),
    st("not_before", Ty::DateTime, Def::Epoch),
    st("not_after", Ty::DateTime, Def::Epoch),
    st("fingerprint", Ty::Str, BLANK),
    st("fingerprint_sha256", Ty::Str, BLANK),
    st("fingerprint_sha1", Ty::Str, BLANK),
    st("purpose", SS, E),
];

pub const CLASSES: &[Class] = &[
    Class {
        name: "session",
        fields: SESSION_FIELDS,
        persist: false,
    },
    Class {
        name: "pool",
        fields: POOL_FIELDS,
        persist: true,
    },
    Class {
        name: "host",
        fields: HOST_FIELDS,
        persist: true,
    },
    Class {
        name: "SR",
        fields: SR_FIELDS,
        persist: true,
    },
    Class {
        name: "PBD",
        fields: PBD_FIELDS,
        persist: true,
    },
    Class {
        name: "VDI",
        fields: VDI_FIELDS,
        persist: true,
    },
    Class {
        name: "VBD",
        fields: VBD_FIELDS,
        persist: true,
    },
    Class {
        name: "VIF",
        fields: VIF_FIELDS,
        persist: true,
    },
    Class {
        name: "network",
        fields: NETWORK_FIELDS,
        persist: true,
    },
    Class {
        name: "task",
        fields: TASK_FIELDS,
        persist: true,
    },
    Class {
        name: "Certificate",
        fields: CERTIFICATE_FIELDS,
        persist: true,
    },
    VM,
];

/// The class of that exact wire name (XAPI class names are case-sensitive).
pub fn class(name: &str) -> Option<&'static Class> {
    CLASSES.iter().find(|c| c.name == name)
}
