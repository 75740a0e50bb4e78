//! What a simulator instance is started with.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::faults::Faults;

pub const DEFAULT_USER: &str = "root";
pub const DEFAULT_PASSWORD: &str = "xenlift";
/// physical_size of the SRs that hold VDIs unless `sr_size` says otherwise.
pub const DEFAULT_SR_SIZE: u64 = 4 << 40;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (see `SimHandle::addr`).
    pub listen: SocketAddr,
    /// Holds `db.json`, the VDI files (`vdis/UUID.img`) and the certificate.
    pub state_dir: PathBuf,
    /// Serve HTTPS with the certificate kept in `state_dir/tls`.
    pub tls: bool,
    pub user: String,
    pub password: String,
    pub faults: Faults,
    /// Sets physical_size of the default SR and the thick SR at start;
    /// `None` keeps what the state directory holds.
    pub sr_size: Option<u64>,
}

impl Config {
    /// Plain HTTP on a free port of 127.0.0.1, user `root`, password `xenlift`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state_dir: state_dir.into(),
            tls: false,
            user: DEFAULT_USER.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            faults: Faults::default(),
            sr_size: None,
        }
    }

    /// The same with TLS on.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }
}
