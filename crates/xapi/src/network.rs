//! Networks and the VIFs that connect VMs to them.

use serde_json::json;

use crate::error::Result;
use crate::session::Session;
use crate::types::{NetworkRecord, NetworkRef, VifRecord, VifRef, VifSpec};

impl Session {
    /// The network with this UUID or (unique) name label.
    pub fn network_lookup(&self, name_or_uuid: &str) -> Result<NetworkRef> {
        self.lookup("network", name_or_uuid).map(NetworkRef)
    }

    pub fn network_record(&self, network: &NetworkRef) -> Result<NetworkRecord> {
        self.call_as("network.get_record", &[json!(network)])
    }

    pub fn vif_create(&self, spec: &VifSpec) -> Result<VifRef> {
        let record = json!({
            "device": spec.device,
            "network": spec.network,
            "VM": spec.vm,
            "MAC": spec.mac,
            "MTU": spec.mtu,
            "other_config": spec.other_config,
            "qos_algorithm_type": "",
            "qos_algorithm_params": {},
        });
        self.call_as("VIF.create", &[record])
    }

    pub fn vif_record(&self, vif: &VifRef) -> Result<VifRecord> {
        self.call_as("VIF.get_record", &[json!(vif)])
    }

    pub fn vif_destroy(&self, vif: &VifRef) -> Result<()> {
        self.call_void("VIF.destroy", &[json!(vif)])
    }
}
