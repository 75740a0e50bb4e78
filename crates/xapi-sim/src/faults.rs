//! Fault injection: what the simulator should do wrong, set at start
//! (`Config::faults`, CLI flags), from tests (`SimHandle::set_faults`) or over
//! HTTP (`POST /xapi-sim/faults`). Every fault takes an optional `times`: it
//! then applies to the next `times` occurrences only and disappears.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// All faults; `None` means "behave".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Reset the connection after this many bytes of an import body; the
    /// task fails with `VDI_IO_ERROR`, as when vhd-tool sees the stream end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_import_after: Option<AfterBytes>,
    /// Cancel the import's task from the server side after this many bytes of
    /// the body (task `cancelled`, `TASK_CANCELLED`); the connection is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_import_after: Option<AfterBytes>,
    /// Fail the task of an import or export with this error, after the 200
    /// and after the body was received (or sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_task: Option<FailTask>,
    /// `VDI.create` (also provision and raw import without `vdi`) fails with
    /// `SR_FULL` whatever the free space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sr_full: Option<Times>,
    /// Cap import and export bodies at this many bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Answer as a pool member: login fails with `HOST_IS_SLAVE [master]`,
    /// imports and exports get `302 Location: <scheme>://<master>/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_member: Option<PoolMember>,
    /// Deny these calls as RBAC does: RPC methods get
    /// `RBAC_PERMISSION_DENIED`, HTTP actions (`http/put_import_raw_vdi`,
    /// `http/get_export_raw_vdi`) get 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_deny: Option<RbacDeny>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterBytes {
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailTask {
    pub code: String,
    #[serde(default)]
    pub params: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Times {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub bytes_per_second: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolMember {
    /// The master's address as `HOST_IS_SLAVE` carries it and the 302 uses it
    /// (`127.0.0.1:PORT` for another simulator).
    pub master: String,
    /// What `x-xenapi-response-host-certificate-thumbprint` reports for
    /// `sha-256:master`; this server's own fingerprint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_fingerprint_sha256: Option<String>,
    /// The same for `sha-1:master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_fingerprint_sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacDeny {
    /// Method names (`VM.destroy`) and HTTP actions (`http/put_import_raw_vdi`);
    /// empty denies everything but logging in and out.
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

impl RbacDeny {
    pub fn denies(&self, action: &str) -> bool {
        if self.methods.is_empty() {
            return !matches!(action, "session.login_with_password" | "session.logout");
        }
        self.methods.iter().any(|m| m == action)
    }
}

/// The occurrence count every fault carries.
pub trait Limited {
    fn times_mut(&mut self) -> &mut Option<u64>;
}

macro_rules! limited {
    ($($t:ty),*) => {$(
        impl Limited for $t {
            fn times_mut(&mut self) -> &mut Option<u64> {
                &mut self.times
            }
        }
        impl $t {
            /// Applies to the next `k` occurrences only.
            pub fn times(mut self, k: u64) -> Self {
                self.times = Some(k);
                self
            }
        }
    )*};
}
limited!(AfterBytes, FailTask, Times, RateLimit, PoolMember, RbacDeny);

impl AfterBytes {
    pub fn new(bytes: u64) -> Self {
        Self { bytes, times: None }
    }
}

impl FailTask {
    pub fn new(code: &str, params: &[&str]) -> Self {
        Self {
            code: code.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
            times: None,
        }
    }
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second,
            times: None,
        }
    }
}

impl PoolMember {
    pub fn new(master: &str) -> Self {
        Self {
            master: master.to_owned(),
            ..Self::default()
        }
    }
}

impl RbacDeny {
    pub fn methods(methods: &[&str]) -> Self {
        Self {
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            times: None,
        }
    }
}

/// The live faults, shared by every connection.
#[derive(Debug, Default)]
pub struct FaultBox(Mutex<Faults>);

impl FaultBox {
    pub fn new(faults: Faults) -> Self {
        Self(Mutex::new(faults))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, faults: Faults) {
        *self.lock() = faults;
    }

    pub fn get(&self) -> Faults {
        self.lock().clone()
    }

    /// Takes one occurrence of a fault when it is set and `applies` to this
    /// occurrence; counts it down and removes it when its count runs out.
    pub fn take<T: Limited + Clone>(
        &self,
        slot: fn(&mut Faults) -> &mut Option<T>,
        applies: impl Fn(&T) -> bool,
    ) -> Option<T> {
        let mut faults = self.lock();
        let entry = slot(&mut faults);
        let fault = entry.as_mut()?;
        if *fault.times_mut() == Some(0) {
            *entry = None;
            return None;
        }
        if !applies(fault) {
            return None;
        }
        let taken = fault.clone();
        if let Some(n) = fault.times_mut() {
            *n -= 1;
            if *n == 0 {
                *entry = None;
            }
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_faults_run_out() {
        let faults = FaultBox::new(Faults {
            sr_full: Some(Times::default().times(2)),
            rate_limit: Some(RateLimit::new(5)),
            ..Faults::default()
        });
        assert!(faults.take(|f| &mut f.sr_full, |_| true).is_some());
        assert!(faults.take(|f| &mut f.sr_full, |_| true).is_some());
        assert!(faults.take(|f| &mut f.sr_full, |_| true).is_none());
        for _ in 0..5 {
            assert!(faults.take(|f| &mut f.rate_limit, |_| true).is_some());
        }
    }

    #[test]
    fn only_matching_occurrences_count() {
        let faults = FaultBox::new(Faults {
            rbac_deny: Some(RbacDeny::methods(&["VM.destroy"]).times(1)),
            ..Faults::default()
        });
        assert!(faults
            .take(|f| &mut f.rbac_deny, |r| r.denies("VM.clone"))
            .is_none());
        assert!(faults
            .take(|f| &mut f.rbac_deny, |r| r.denies("VM.destroy"))
            .is_some());
        assert!(faults
            .take(|f| &mut f.rbac_deny, |r| r.denies("VM.destroy"))
            .is_none());
    }

    #[test]
    fn json_form_is_stable() {
        let f: Faults = serde_json::from_str(
            r#"{"drop_import_after":{"bytes":100,"times":1},"fail_task":{"code":"X","params":["a"]}}"#,
        )
        .unwrap();
        assert_eq!(f.drop_import_after, Some(AfterBytes::new(100).times(1)));
        assert_eq!(f.fail_task, Some(FailTask::new("X", &["a"])));
        assert!(serde_json::from_str::<Faults>(r#"{"no_such_fault":{}}"#).is_err());
    }
}
