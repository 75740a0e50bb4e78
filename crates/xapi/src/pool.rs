//! Pool-wide facts: the default SR, hosts, their TLS certificates.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::Result;
use crate::session::Session;
use crate::tls::Fingerprint;
use crate::types::{CertificateRecord, CertificateRef, HostRecord, HostRef, PoolRef, SrRef};

impl Session {
    /// `CLASS.get_all_records` as (ref, record) pairs, in ref order.
    pub fn all_records<R: DeserializeOwned>(&self, class: &str) -> Result<Vec<(String, R)>> {
        let map: BTreeMap<String, R> = self.call_as(&format!("{class}.get_all_records"), &[])?;
        Ok(map.into_iter().collect())
    }

    pub fn pools(&self) -> Result<Vec<PoolRef>> {
        self.call_as("pool.get_all", &[])
    }

    /// The pool's default SR; `None` when the pool has none set.
    pub fn pool_default_sr(&self) -> Result<Option<SrRef>> {
        let Some(pool) = self.pools()?.into_iter().next() else {
            return Ok(None);
        };
        let sr: SrRef = self.call_as("pool.get_default_SR", &[json!(pool)])?;
        Ok((!sr.is_null()).then_some(sr))
    }

    pub fn hosts(&self) -> Result<Vec<(HostRef, HostRecord)>> {
        Ok(self
            .all_records::<HostRecord>("host")?
            .into_iter()
            .map(|(r, h)| (HostRef(r), h))
            .collect())
    }

    /// Every certificate the pool knows (`Certificate` records).
    pub fn certificates(&self) -> Result<Vec<(CertificateRef, CertificateRecord)>> {
        Ok(self
            .all_records::<CertificateRecord>("Certificate")?
            .into_iter()
            .map(|(r, c)| (CertificateRef(r), c))
            .collect())
    }

    /// SHA-256 fingerprints of the server certificates of the host at `address`.
    pub fn host_fingerprints(&self, address: &str) -> Result<Vec<Fingerprint>> {
        let hosts: Vec<HostRef> = self
            .hosts()?
            .into_iter()
            .filter(|(_, h)| h.address == address || h.hostname == address)
            .map(|(r, _)| r)
            .collect();
        Ok(self
            .certificates()?
            .into_iter()
            .filter(|(_, c)| c.kind != "ca" && hosts.contains(&c.host))
            .filter_map(|(_, c)| c.sha256())
            .collect())
    }
}
