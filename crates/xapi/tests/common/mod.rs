//! Shared by the integration tests: an in-process xapi-sim with TLS, and a pinned session.
#![allow(dead_code)]
// Test helpers may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use tempfile::TempDir;
use xapi_sim::{Config, SimHandle};
use xenlift_xapi::{Connect, Fingerprint, Options, Session, SrRef, VdiRef, VdiSpec};

pub struct Sim {
    pub handle: SimHandle,
    pub dir: TempDir,
}

impl Sim {
    /// A fresh simulator serving HTTPS on 127.0.0.1.
    pub fn start() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let handle = xapi_sim::spawn(Config::new(dir.path().join("state")).with_tls()).unwrap();
        Sim { handle, dir }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.handle
            .fingerprint()
            .expect("the sim serves TLS")
            .parse()
            .unwrap()
    }

    pub fn url(&self) -> String {
        self.handle.base_url()
    }

    /// A connection builder pinned to this simulator, with quick polling.
    pub fn connect(&self) -> Connect {
        Connect::new(&self.url())
            .pin(self.fingerprint())
            .options(fast_options())
    }

    pub fn login(&self) -> Session {
        self.connect()
            .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
            .unwrap()
    }

    /// The sparse file behind a VDI.
    pub fn vdi_file(&self, session: &Session, vdi: &VdiRef) -> std::path::PathBuf {
        self.handle.vdi_path(&session.vdi_uuid(vdi).unwrap())
    }
}

pub fn fast_options() -> Options {
    Options {
        poll_interval: Duration::from_millis(20),
        task_settle_timeout: Duration::from_secs(30),
        ..Options::default()
    }
}

/// An empty VDI on the pool's default SR.
pub fn new_vdi(session: &Session, size: u64) -> VdiRef {
    let sr: SrRef = session
        .pool_default_sr()
        .unwrap()
        .expect("the sim has a default SR");
    session
        .vdi_create(&VdiSpec {
            sr,
            name_label: "test disk".into(),
            name_description: String::new(),
            virtual_size: size,
            other_config: BTreeMap::new(),
        })
        .unwrap()
}

/// Deterministic non-repeating bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = testkit::Rng::new(seed);
    let mut out = vec![0u8; len];
    rng.fill(&mut out);
    out
}
