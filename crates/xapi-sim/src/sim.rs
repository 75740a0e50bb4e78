//! The state every connection shares: the object database, the live faults,
//! the certificate and where VDI files live.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::db::Db;
use crate::faults::FaultBox;
use crate::tls::Identity;

pub struct Sim {
    db: Mutex<Db>,
    pub faults: FaultBox,
    pub user: String,
    password: String,
    pub identity: Identity,
    pub tls: bool,
    pub vdi_dir: PathBuf,
    /// VDIs a transfer is using (refs, with a count of transfers).
    busy: Mutex<HashMap<String, usize>>,
}

/// Marks a VDI as in use by a transfer until dropped.
pub struct Busy<'a> {
    sim: &'a Sim,
    vdi: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut busy = self.sim.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = busy.get_mut(&self.vdi) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.vdi);
            }
        }
    }
}

impl Sim {
    pub fn new(
        db: Db,
        faults: FaultBox,
        user: String,
        password: String,
        identity: Identity,
        tls: bool,
        vdi_dir: PathBuf,
    ) -> Self {
        Self {
            db: Mutex::new(db),
            faults,
            user,
            password,
            identity,
            tls,
            vdi_dir,
            busy: Mutex::new(HashMap::new()),
        }
    }

    /// Marks `vdi` as in use (`VDI.destroy` then fails with `VDI_IN_USE`).
    pub fn use_vdi(&self, vdi: &str) -> Busy<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        *busy.entry(vdi.to_owned()).or_default() += 1;
        Busy {
            sim: self,
            vdi: vdi.to_owned(),
        }
    }

    pub fn is_busy(&self, vdi: &str) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(vdi)
    }

    /// The database, locked. A panic elsewhere must not stop the server, so a
    /// poisoned lock is taken over.
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves the database if it changed; a failure is logged, not fatal.
    pub fn save(&self, db: &mut Db) {
        if db.is_dirty() {
            if let Err(e) = db.save() {
                tracing::error!("saving the state failed: {e}");
            }
        }
    }

    pub fn vdi_path(&self, uuid: &str) -> PathBuf {
        self.vdi_dir.join(format!("{uuid}.img"))
    }

    pub fn credentials_ok(&self, user: &str, password: &str) -> bool {
        user == self.user && password == self.password
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}
