//! Test helpers: a simulator in a temporary directory, raw HTTP requests, a
//! tiny JSON-RPC client, and disk images made by qemu-img.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use xapi_sim::{Config, SimHandle};

pub use testkit::{have, run, sha256_file, TempDir};

pub struct Sim {
    pub handle: SimHandle,
    pub dir: TempDir,
}

impl Sim {
    pub fn start() -> Sim {
        let dir = testkit::tempdir().unwrap();
        let handle = xapi_sim::spawn(Config::new(dir.path().join("state"))).unwrap();
        Sim { handle, dir }
    }

    pub fn start_with(config: impl FnOnce(Config) -> Config) -> Sim {
        let dir = testkit::tempdir().unwrap();
        let handle = xapi_sim::spawn(config(Config::new(dir.path().join("state")))).unwrap();
        Sim { handle, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    pub fn client(&self) -> Client {
        Client::login(self.addr())
    }

    /// A file in the test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// An HTTP response read until the server closed the connection.
#[derive(Debug)]
pub struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("").to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status_line,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// Sends a request (head lines without the final blank line, then `body`)
/// and reads the answer until the server closes. A write error (the server
/// stopped reading) is tolerated: the answer is what counts.
pub fn request(addr: SocketAddr, head: &str, body: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut all = head.replace('\n', "\r\n").into_bytes();
    all.extend_from_slice(b"\r\n\r\n");
    let _ = s.write_all(&all);
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// `PUT target` with an exact Content-Length.
pub fn put(addr: SocketAddr, target: &str, extra: &[&str], body: &[u8]) -> Response {
    let mut head = format!(
        "PUT {target} HTTP/1.1\nHost: {addr}\nContent-Length: {}",
        body.len()
    );
    for h in extra {
        head.push('\n');
        head.push_str(h);
    }
    request(addr, &head, body)
}

pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, &format!("GET {target} HTTP/1.1\nHost: {addr}"), b"")
}

/// An XAPI failure: code and parameters.
pub type Failure = (String, Vec<String>);

/// A JSON-RPC 2.0 call.
pub fn rpc(addr: SocketAddr, method: &str, params: Value) -> Result<Value, Failure> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
    let head = format!(
        "POST /jsonrpc HTTP/1.1\nHost: {addr}\nContent-Type: application/json\nConnection: close\nContent-Length: {}",
        body.len()
    );
    let resp = request(addr, &head, body.as_bytes());
    assert_eq!(
        resp.status(),
        200,
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    if let Some(err) = doc.get("error") {
        let data = err["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err((err["message"].as_str().unwrap_or_default().to_owned(), data));
    }
    Ok(doc["result"].clone())
}

/// A logged-in session on a simulator.
pub struct Client {
    pub addr: SocketAddr,
    pub session: String,
}

impl Client {
    pub fn login(addr: SocketAddr) -> Client {
        let session = rpc(
            addr,
            "session.login_with_password",
            json!(["root", "xenlift", "2.21", "tests"]),
        )
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
        Client { addr, session }
    }

    /// A call with the session prepended to `params`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, Failure> {
        let mut all = vec![json!(self.session)];
        all.extend(params.as_array().cloned().unwrap_or_default());
        rpc(self.addr, method, Value::Array(all))
    }

    pub fn ok(&self, method: &str, params: Value) -> Value {
        self.call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    pub fn err(&self, method: &str, params: Value) -> Failure {
        match self.call(method, params) {
            Ok(v) => panic!("{method} succeeded with {v}"),
            Err(e) => e,
        }
    }

    pub fn sr(&self, name: &str) -> String {
        self.ok("SR.get_by_name_label", json!([name]))[0]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn default_sr(&self) -> String {
        let pool = self.ok("pool.get_all", json!([]))[0].clone();
        self.ok("pool.get_default_SR", json!([pool]))
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A user VDI of `size` bytes; returns (ref, uuid).
    pub fn vdi(&self, sr: &str, size: u64) -> (String, String) {
        let vdi = self
            .ok(
                "VDI.create",
                json!([{"SR": sr, "virtual_size": size, "type": "user", "sharable": false,
                        "read_only": false, "other_config": {}, "name_label": "test"}]),
            )
            .as_str()
            .unwrap()
            .to_owned();
        let uuid = self
            .ok("VDI.get_uuid", json!([vdi]))
            .as_str()
            .unwrap()
            .to_owned();
        (vdi, uuid)
    }

    pub fn task(&self) -> String {
        self.ok("task.create", json!(["test", ""]))
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (a bounded while) for a task to leave pending; returns its status
    /// and error_info.
    pub fn wait(&self, task: &str) -> (String, Vec<String>) {
        for _ in 0..600 {
            let status = self
                .ok("task.get_status", json!([task]))
                .as_str()
                .unwrap()
                .to_owned();
            if status != "pending" && status != "cancelling" {
                let info = self.ok("task.get_error_info", json!([task]));
                let info = info
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                return (status, info);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("task {task} still pending after a minute");
    }

    /// `PUT /import_raw_vdi?...&session_id=S` with `query` (without `?`).
    pub fn import(&self, query: &str, body: &[u8]) -> Response {
        put(
            self.addr,
            &format!("/import_raw_vdi?session_id={}&{query}", self.session),
            &[],
            body,
        )
    }
}

/// Fails with a clear message when a tool the tests need is missing.
pub fn need(tool: &str) {
    assert!(have(tool), "{tool} is missing: run ci/setup");
}

/// A raw image of `size` bytes with `chunks` of random data at the given
/// offsets (the rest is zero, sparse).
pub fn raw_image(path: &Path, size: u64, chunks: &[(u64, usize)]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ size;
    for (offset, len) in chunks {
        let data: Vec<u8> = (0..*len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        f.write_all_at(&data, *offset).unwrap();
    }
}

/// A dynamic VHD made by qemu-img from a raw image.
pub fn qemu_vhd(raw: &Path, vhd: &Path) {
    need("qemu-img");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic",
            raw.to_str().unwrap(),
            vhd.to_str().unwrap(),
        ],
    );
}

/// The virtual size qemu-img reads from an image.
pub fn qemu_size(image: &Path) -> u64 {
    let out = testkit::run_stdout(
        "qemu-img",
        &["info", "--output=json", image.to_str().unwrap()],
    );
    let info: Value = serde_json::from_str(&out).unwrap();
    info["virtual-size"].as_u64().unwrap()
}

/// Whether `big` starts with `small`'s bytes and is zero after them.
pub fn same_then_zero(big: &[u8], small: &[u8]) -> bool {
    big.len() >= small.len()
        && big[..small.len()] == *small
        && big[small.len()..].iter().all(|b| *b == 0)
}
