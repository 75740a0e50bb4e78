//! Storage: SRs, VDIs and the VBDs that attach them to VMs.

use serde_json::json;

use crate::error::Result;
use crate::session::Session;
use crate::types::{SrRecord, SrRef, VbdRecord, VbdRef, VbdSpec, VdiRecord, VdiRef, VdiSpec};

impl Session {
    /// The SR with this UUID or (unique) name label.
    pub fn sr_lookup(&self, name_or_uuid: &str) -> Result<SrRef> {
        self.lookup("SR", name_or_uuid).map(SrRef)
    }

    pub fn sr_record(&self, sr: &SrRef) -> Result<SrRecord> {
        self.call_as("SR.get_record", &[json!(sr)])
    }

    /// A new, empty user VDI.
    pub fn vdi_create(&self, spec: &VdiSpec) -> Result<VdiRef> {
        let record = json!({
            "SR": spec.sr,
            "name_label": spec.name_label,
            "name_description": spec.name_description,
            // XAPI takes int64 as a JSON number; sizes never exceed i64.
            "virtual_size": spec.virtual_size,
            "type": "user",
            "sharable": false,
            "read_only": false,
            "other_config": spec.other_config,
            "xenstore_data": {},
            "sm_config": {},
            "tags": [],
        });
        self.call_as("VDI.create", &[record])
    }

    pub fn vdi_record(&self, vdi: &VdiRef) -> Result<VdiRecord> {
        self.call_as("VDI.get_record", &[json!(vdi)])
    }

    pub fn vdi_uuid(&self, vdi: &VdiRef) -> Result<String> {
        self.call_as("VDI.get_uuid", &[json!(vdi)])
    }

    pub fn vdi_by_uuid(&self, uuid: &str) -> Result<VdiRef> {
        self.call_as("VDI.get_by_uuid", &[json!(uuid)])
    }

    pub fn vdi_add_other_config(&self, vdi: &VdiRef, key: &str, value: &str) -> Result<()> {
        self.map_set("VDI", vdi.as_str(), "other_config", key, value)
    }

    pub fn vdi_destroy(&self, vdi: &VdiRef) -> Result<()> {
        self.call_void("VDI.destroy", &[json!(vdi)])
    }

    /// Attaches a VDI to a VM as a read-write disk.
    pub fn vbd_create(&self, spec: &VbdSpec) -> Result<VbdRef> {
        let record = json!({
            "VM": spec.vm,
            "VDI": spec.vdi,
            "userdevice": spec.userdevice,
            "bootable": spec.bootable,
            "mode": "RW",
            "type": "Disk",
            "empty": false,
            "other_config": spec.other_config,
            "qos_algorithm_type": "",
            "qos_algorithm_params": {},
        });
        self.call_as("VBD.create", &[record])
    }

    pub fn vbd_record(&self, vbd: &VbdRef) -> Result<VbdRecord> {
        self.call_as("VBD.get_record", &[json!(vbd)])
    }

    pub fn vbd_destroy(&self, vbd: &VbdRef) -> Result<()> {
        self.call_void("VBD.destroy", &[json!(vbd)])
    }

    /// Sets `key` in a map field: remove first, so an existing key raises no
    /// MAP_DUPLICATE_KEY (removing a missing key is not an error in XAPI).
    pub(crate) fn map_set(
        &self,
        class: &str,
        object: &str,
        field: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.call_void(
            &format!("{class}.remove_from_{field}"),
            &[json!(object), json!(key)],
        )?;
        self.call_void(
            &format!("{class}.add_to_{field}"),
            &[json!(object), json!(key), json!(value)],
        )
    }
}
