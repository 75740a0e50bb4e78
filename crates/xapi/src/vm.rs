//! VMs: creation from a template and the settings conversion applies.

use serde_json::json;

use crate::error::{Error, Result};
use crate::session::Session;
use crate::types::{Firmware, SecureBoot, VmRecord, VmRef};

/// The template VMs are cloned from: no OS-specific defaults, no disks after provision
/// once `other_config:disks` is dropped.
pub const BLANK_TEMPLATE: &str = "Other install media";

/// Hardware of the new VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub firmware: Firmware,
    /// Only applied with UEFI.
    pub secure_boot: SecureBoot,
}

impl Session {
    pub fn vm_by_name(&self, name: &str) -> Result<Vec<VmRef>> {
        self.call_as("VM.get_by_name_label", &[json!(name)])
    }

    pub fn vm_by_uuid(&self, uuid: &str) -> Result<VmRef> {
        self.call_as("VM.get_by_uuid", &[json!(uuid)])
    }

    pub fn vm_record(&self, vm: &VmRef) -> Result<VmRecord> {
        self.call_as("VM.get_record", &[json!(vm)])
    }

    pub fn vm_uuid(&self, vm: &VmRef) -> Result<String> {
        self.call_as("VM.get_uuid", &[json!(vm)])
    }

    /// A new halted VM named `name`: clone of `template` (a unique template name), without
    /// the template's disk list (provision would add blank disks), then provisioned.
    pub fn vm_from_template(&self, template: &str, name: &str) -> Result<VmRef> {
        let templates: Vec<VmRef> = self
            .vm_by_name(template)?
            .into_iter()
            .filter(|vm| {
                self.call_as::<bool>("VM.get_is_a_template", &[json!(vm)])
                    .unwrap_or(false)
            })
            .collect();
        let template_ref = match templates.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::NotFound {
                    host: self.host(),
                    class: "VM template",
                    key: template.to_string(),
                })
            }
            many => {
                return Err(Error::Ambiguous {
                    host: self.host(),
                    class: "VM template",
                    key: template.to_string(),
                    count: many.len(),
                })
            }
        };
        let vm: VmRef = self.call_as("VM.clone", &[json!(template_ref), json!(name)])?;
        let provisioned = self
            .call_void("VM.remove_from_other_config", &[json!(vm), json!("disks")])
            .and_then(|()| self.call_void("VM.provision", &[json!(vm)]));
        if let Err(e) = provisioned {
            // Do not leave a half-made VM behind.
            if let Err(cleanup) = self.vm_destroy(&vm) {
                tracing::warn!(error = %cleanup, %vm, "could not remove the half-made VM");
            }
            return Err(e);
        }
        Ok(vm)
    }

    /// VCPUs: XAPI needs at_startup <= max at every step, so the order depends on direction.
    pub fn vm_set_vcpus(&self, vm: &VmRef, count: u32) -> Result<()> {
        let at_startup: i64 = self.call_as("VM.get_VCPUs_at_startup", &[json!(vm)])?;
        let count_json = json!(count);
        if i64::from(count) < at_startup {
            self.call_void("VM.set_VCPUs_at_startup", &[json!(vm), count_json.clone()])?;
            self.call_void("VM.set_VCPUs_max", &[json!(vm), count_json])
        } else {
            self.call_void("VM.set_VCPUs_max", &[json!(vm), count_json.clone()])?;
            self.call_void("VM.set_VCPUs_at_startup", &[json!(vm), count_json])
        }
    }

    /// Fixed memory: static max and both dynamic limits at `bytes`; static min kept at or
    /// below it.
    pub fn vm_set_memory(&self, vm: &VmRef, bytes: u64) -> Result<()> {
        let static_min: i64 = self.call_as("VM.get_memory_static_min", &[json!(vm)])?;
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let static_min = static_min.clamp(0, bytes);
        self.vm_set_memory_limits(vm, static_min, bytes, bytes, bytes)
    }

    pub fn vm_set_memory_limits(
        &self,
        vm: &VmRef,
        static_min: i64,
        static_max: i64,
        dynamic_min: i64,
        dynamic_max: i64,
    ) -> Result<()> {
        self.call_void(
            "VM.set_memory_limits",
            &[
                json!(vm),
                json!(static_min),
                json!(static_max),
                json!(dynamic_min),
                json!(dynamic_max),
            ],
        )
    }

    /// `HVM_boot_params:firmware`.
    pub fn vm_set_firmware(&self, vm: &VmRef, firmware: Firmware) -> Result<()> {
        self.map_set(
            "VM",
            vm.as_str(),
            "HVM_boot_params",
            "firmware",
            firmware.as_str(),
        )
    }

    /// `platform:secureboot`.
    pub fn vm_set_secure_boot(&self, vm: &VmRef, secure_boot: SecureBoot) -> Result<()> {
        self.map_set(
            "VM",
            vm.as_str(),
            "platform",
            "secureboot",
            secure_boot.as_str(),
        )
    }

    /// Applies CPUs, memory, firmware and (with UEFI) Secure Boot.
    pub fn vm_apply(&self, vm: &VmRef, settings: &VmSettings) -> Result<()> {
        self.vm_set_vcpus(vm, settings.vcpus)?;
        self.vm_set_memory(vm, settings.memory_bytes)?;
        self.vm_set_firmware(vm, settings.firmware)?;
        if settings.firmware == Firmware::Uefi {
            self.vm_set_secure_boot(vm, settings.secure_boot)?;
        }
        Ok(())
    }

    /// Blocks `operation` (e.g. "start") with a reason XenCenter shows.
    pub fn vm_block_operation(&self, vm: &VmRef, operation: &str, reason: &str) -> Result<()> {
        self.map_set("VM", vm.as_str(), "blocked_operations", operation, reason)
    }

    pub fn vm_unblock_operation(&self, vm: &VmRef, operation: &str) -> Result<()> {
        self.call_void(
            "VM.remove_from_blocked_operations",
            &[json!(vm), json!(operation)],
        )
    }

    pub fn vm_set_other_config(&self, vm: &VmRef, key: &str, value: &str) -> Result<()> {
        self.map_set("VM", vm.as_str(), "other_config", key, value)
    }

    pub fn vm_remove_other_config(&self, vm: &VmRef, key: &str) -> Result<()> {
        self.call_void("VM.remove_from_other_config", &[json!(vm), json!(key)])
    }

    pub fn vm_add_tag(&self, vm: &VmRef, tag: &str) -> Result<()> {
        self.call_void("VM.add_tags", &[json!(vm), json!(tag)])
    }

    pub fn vm_set_description(&self, vm: &VmRef, text: &str) -> Result<()> {
        self.call_void("VM.set_name_description", &[json!(vm), json!(text)])
    }

    /// Device numbers a new VIF may take.
    pub fn vm_allowed_vif_devices(&self, vm: &VmRef) -> Result<Vec<String>> {
        self.call_as("VM.get_allowed_VIF_devices", &[json!(vm)])
    }

    /// Device numbers a new VBD may take.
    pub fn vm_allowed_vbd_devices(&self, vm: &VmRef) -> Result<Vec<String>> {
        self.call_as("VM.get_allowed_VBD_devices", &[json!(vm)])
    }

    /// Removes the VM record (not its disks).
    pub fn vm_destroy(&self, vm: &VmRef) -> Result<()> {
        self.call_void("VM.destroy", &[json!(vm)])
    }
}
