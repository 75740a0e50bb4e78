//! xapi-sim: an XAPI-compatible server for tests and demos.
//!
//! It serves one pool with one host, SRs whose VDIs are sparse files in the
//! state directory, networks, the "Other install media" template, VMs, VBDs,
//! VIFs, tasks and certificates, over JSON-RPC (`/jsonrpc`) and XML-RPC
//! (`/`, `/RPC2`), with XAPI's import and export transfers and fault
//! injection for tests. Its behaviour follows `reference/xapi.md`.
//!
//! ```no_run
//! let sim = xapi_sim::spawn(xapi_sim::Config::new("/tmp/state").with_tls()).unwrap();
//! println!("{} {:?}", sim.base_url(), sim.fingerprint());
//! sim.shutdown();
//! ```

mod api;
mod clock;
mod config;
mod control;
mod db;
mod error;
mod faults;
mod handle;
mod http;
mod rpc;
mod seed;
mod sim;
mod sparse;
mod tasks;
mod tls;
mod transfer;
mod value;

pub use config::{Config, DEFAULT_PASSWORD, DEFAULT_SR_SIZE, DEFAULT_USER};
pub use error::Error;
pub use faults::{AfterBytes, FailTask, Faults, PoolMember, RateLimit, RbacDeny, Times};
pub use handle::{spawn, Object, SimHandle};
pub use seed::{DEFAULT_SR, ISO_SR, TEMPLATE, THICK_SR};
