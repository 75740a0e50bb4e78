//! Starting a simulator in-process and talking to it from tests.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::Config;
use crate::db::classes::class;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::faults::{FaultBox, Faults};
use crate::http::{self, Server};
use crate::sim::Sim;
use crate::{control, seed, tls};

/// A running simulator; dropping it stops it like `shutdown`.
pub struct SimHandle {
    sim: Arc<Sim>,
    server: Server,
    state_dir: PathBuf,
}

/// Starts a simulator on background threads: loads (or creates) the state in
/// `config.state_dir`, binds `config.listen` and serves until shut down.
pub fn spawn(config: Config) -> Result<SimHandle> {
    let dir = &config.state_dir;
    let vdi_dir = dir.join("vdis");
    fs::create_dir_all(&vdi_dir)
        .map_err(|e| Error::io(format!("creating {}", vdi_dir.display()), e))?;
    let identity = tls::load_or_create(&dir.join("tls"), seed::HOST_NAME)?;
    if identity.made_now {
        tracing::info!(
            "made a new certificate, SHA-256 {}",
            identity.fingerprint_sha256
        );
    }
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let address = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let mut db = Db::open(&dir.join("db.json"))?;
    seed::seed(&mut db, &address);
    seed::refresh(&mut db, &address, &identity, config.sr_size);
    for sr in db.refs("SR") {
        crate::api::refresh_usage_of_dir(&vdi_dir, &mut db, &sr);
    }
    db.save()?;
    let tls_config = if config.tls {
        Some(tls::server_config(&identity)?)
    } else {
        None
    };
    let sim = Arc::new(Sim::new(
        db,
        FaultBox::new(config.faults.clone()),
        config.user.clone(),
        config.password.clone(),
        identity,
        config.tls,
        vdi_dir,
    ));
    let server = http::start(sim.clone(), listener, tls_config)
        .map_err(|e| Error::io("starting the server", e))?;
    tracing::info!("xapi-sim listening on {}", addr);
    Ok(SimHandle {
        sim,
        server,
        state_dir: config.state_dir,
    })
}

/// One object read from the simulator: its ref and its fields as JSON
/// (computed fields such as `VM.VBDs` included).
#[derive(Debug, Clone)]
pub struct Object {
    pub reference: String,
    pub fields: Json,
}

impl Object {
    pub fn get(&self, field: &str) -> &Json {
        self.fields.get(field).unwrap_or(&Json::Null)
    }

    /// A string field ("" when absent).
    pub fn str(&self, field: &str) -> &str {
        self.get(field).as_str().unwrap_or("")
    }

    pub fn int(&self, field: &str) -> i64 {
        self.get(field).as_i64().unwrap_or(0)
    }

    pub fn bool(&self, field: &str) -> bool {
        self.get(field).as_bool().unwrap_or(false)
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `https://127.0.0.1:PORT` or `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.sim.scheme(), self.addr())
    }

    /// The certificate's SHA-256 fingerprint in XAPI's form, when serving TLS.
    pub fn fingerprint(&self) -> Option<String> {
        self.sim
            .tls
            .then(|| self.sim.identity.fingerprint_sha256.clone())
    }

    /// The certificate as PEM (for `curl --cacert` or Python's `ssl`).
    pub fn cert_path(&self) -> PathBuf {
        self.sim.identity.cert_path.clone()
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// Replaces all faults (`Faults::default()` clears them).
    pub fn set_faults(&self, faults: Faults) {
        self.sim.faults.set(faults);
    }

    /// The live faults, with the counts they have left.
    pub fn faults(&self) -> Faults {
        self.sim.faults.get()
    }

    /// Sets an SR's physical_size; the SR is named by ref, UUID or name.
    pub fn set_sr_physical_size(
        &self,
        sr: &str,
        bytes: u64,
    ) -> std::result::Result<String, String> {
        control::set_sr_size(&self.sim, sr, bytes)
    }

    /// The sparse file holding a VDI's contents.
    pub fn vdi_path(&self, uuid: &str) -> PathBuf {
        self.sim.vdi_path(uuid)
    }

    /// Every object of a class (`VM`, `VDI`, `task`...).
    pub fn objects(&self, class_name: &str) -> Vec<Object> {
        let Some(c) = class(class_name) else {
            return Vec::new();
        };
        let db = self.sim.db();
        db.refs(c.name)
            .into_iter()
            .filter_map(|r| {
                db.record_json(c, &r).map(|fields| Object {
                    reference: r,
                    fields,
                })
            })
            .collect()
    }

    /// One object by ref or UUID.
    pub fn object(&self, class_name: &str, ref_or_uuid: &str) -> Option<Object> {
        self.objects(class_name)
            .into_iter()
            .find(|o| o.reference == ref_or_uuid || o.str("uuid") == ref_or_uuid)
    }

    /// Objects whose string field equals `value` (e.g. `name_label`).
    pub fn find(&self, class_name: &str, field: &str, value: &str) -> Vec<Object> {
        self.objects(class_name)
            .into_iter()
            .filter(|o| o.str(field) == value)
            .collect()
    }

    /// Stops serving, closes open connections and waits for them.
    pub fn shutdown(mut self) {
        self.server.stop();
        let mut db = self.sim.db();
        self.sim.save(&mut db);
    }
}
