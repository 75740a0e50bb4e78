//! Trust: pinning refuses a wrong certificate before any byte of a request is sent,
//! a CA bundle works, plain http needs the explicit option.
// Test helpers may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{fast_options, new_vdi, pattern, Sim};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use xenlift_xapi::{
    codes, fetch_fingerprint, Connect, Error, Fingerprint, ImportFormat, ImportRequest,
};

/// A self-signed certificate made by openssl; returns (cert.pem, key.pem).
fn openssl_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    assert!(testkit::have("openssl"), "openssl is missing: run ci/setup");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = testkit::run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=pin-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `openssl x509 -fingerprint -sha256`, the form XAPI publishes.
fn openssl_fingerprint(cert: &Path) -> String {
    let text = testkit::run_stdout(
        "openssl",
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            cert.to_str().unwrap(),
        ],
    );
    text.trim().rsplit('=').next().unwrap().to_string()
}

/// A TLS server for one connection that records the application data it receives (the
/// decrypted request) and answers `reply` once a request has arrived.
fn recording_tls_server(
    cert: &Path,
    key: &Path,
    reply: Vec<u8>,
) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let certs = vec![CertificateDer::from_pem_file(cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if request_complete(&received) {
                let _ = tls.write_all(&reply);
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return received;
            }
        }
    });
    (addr, handle)
}

fn request_complete(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    data.len() >= end + 4 + length
}

/// A JSON-RPC reply refusing the login, as XAPI sends it.
fn auth_failed() -> Vec<u8> {
    let body = r#"{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_AUTHENTICATION_FAILED","data":["root","Authentication failure"]},"id":1}"#;
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn wrong_pin_refuses_before_any_request_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(dir.path());
    let (addr, server) = recording_tls_server(&cert, &key, auth_failed());
    let wrong = Fingerprint::of_der(b"some other certificate");
    let err = Connect::new(&format!("https://{addr}"))
        .pin(wrong)
        .options(fast_options())
        .login("root", "the-password".into())
        .unwrap_err();
    let received = server.join().unwrap();
    assert!(
        received.is_empty(),
        "the server got application data: {:?}",
        String::from_utf8_lossy(&received)
    );
    let Error::FingerprintMismatch { seen, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        seen.to_string(),
        openssl_fingerprint(&cert),
        "the error shows the certificate seen"
    );
    assert!(
        err.to_string().contains(&openssl_fingerprint(&cert)),
        "{err}"
    );
}

#[test]
fn right_pin_in_any_written_form_delivers_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(dir.path());
    let published = openssl_fingerprint(&cert);
    let (addr, server) = recording_tls_server(&cert, &key, auth_failed());
    // XAPI's form, without colons, lower case: all the same pin.
    let pin: Fingerprint = published.replace(':', "").to_lowercase().parse().unwrap();
    let err = Connect::new(&format!("https://{addr}"))
        .pin(pin)
        .options(fast_options())
        .login("root", "the-password".into())
        .unwrap_err();
    assert!(err.is_code(codes::SESSION_AUTHENTICATION_FAILED), "{err}");
    let received = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(
        received.starts_with("POST /jsonrpc HTTP/1.1\r\n"),
        "{received}"
    );
    assert!(
        received.contains("\"session.login_with_password\"")
            && received.contains("\"jsonrpc\":\"2.0\"")
    );
    // The same TLS path that refused above does carry credentials when the pin matches.
    assert!(received.contains("the-password"));
}

#[test]
fn fetch_fingerprint_reads_the_certificate_without_sending_anything() {
    let sim = Sim::start();
    let addr = sim.handle.addr();
    let seen = fetch_fingerprint("127.0.0.1", addr.port(), Duration::from_secs(10)).unwrap();
    assert_eq!(seen, sim.fingerprint());
    assert_eq!(
        seen.to_string(),
        openssl_fingerprint(&sim.handle.cert_path())
    );
    assert!(sim.handle.objects("session").is_empty());

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(dir.path());
    let (addr, server) = recording_tls_server(&cert, &key, Vec::new());
    let seen = fetch_fingerprint("127.0.0.1", addr.port(), Duration::from_secs(10)).unwrap();
    assert_eq!(seen.to_string(), openssl_fingerprint(&cert));
    assert!(server.join().unwrap().is_empty());
}

#[test]
fn wrong_pin_against_the_sim_makes_no_session() {
    let sim = Sim::start();
    let err = Connect::new(&sim.url())
        .pin(Fingerprint::of_der(b"not the sim"))
        .options(fast_options())
        .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err}");
    assert!(sim.handle.objects("session").is_empty());
}

#[test]
fn ca_bundle_trusts_the_certificate_it_holds() {
    let sim = Sim::start();
    let session = Connect::new(&sim.url())
        .ca_bundle(sim.handle.cert_path())
        .options(fast_options())
        .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap();
    assert!(session.pool_default_sr().unwrap().is_some());
    // A bundle with another CA refuses the sim.
    let dir = tempfile::tempdir().unwrap();
    let (other, _) = openssl_cert(dir.path());
    let err = Connect::new(&sim.url())
        .ca_bundle(other)
        .options(fast_options())
        .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. } | Error::Tls { .. }),
        "{err}"
    );
}

/// Forwards TCP connections to `target`, recording what each side sends.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn text(buffer: &Mutex<Vec<u8>>) -> String {
        String::from_utf8_lossy(&buffer.lock().unwrap()).to_string()
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, record: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 65536];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                record.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn recording_proxy(target: SocketAddr) -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (sent_sink, received_sink) = (sent.clone(), received.clone());
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(target) else {
                return;
            };
            let (client_back, server_back) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (up, down) = (sent_sink.clone(), received_sink.clone());
            thread::spawn(move || pump(client, server, up));
            thread::spawn(move || pump(server_back, client_back, down));
        }
    });
    Recorder {
        addr,
        sent,
        received,
    }
}

/// `PUT /import_raw_vdi` request heads in what the client sent.
fn import_heads(sent: &str) -> Vec<String> {
    sent.split("PUT /import_raw_vdi")
        .skip(1)
        .map(|rest| rest.split("\r\n\r\n").next().unwrap().to_string())
        .collect()
}

#[test]
fn plaintext_only_with_the_option_and_uploads_carry_exact_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let plain = xapi_sim::spawn(xapi_sim::Config::new(dir.path().join("state"))).unwrap();
    let url = plain.base_url();
    assert!(url.starts_with("http://"));
    let err = Connect::new(&url)
        .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap_err();
    assert!(matches!(err, Error::PlaintextRefused { .. }), "{err}");
    assert!(
        plain.objects("session").is_empty(),
        "refused before any request"
    );

    let proxy = recording_proxy(plain.addr());
    let session = Connect::new(&format!("http://{}", proxy.addr))
        .allow_plaintext(true)
        .options(fast_options())
        .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap();
    let length = 3 << 20;
    let vdi = new_vdi(&session, length);
    session
        .import_raw_vdi(ImportRequest::new(
            vdi,
            ImportFormat::Raw,
            std::io::Cursor::new(pattern(11, length as usize)),
            length,
        ))
        .unwrap();
    let heads = import_heads(&Recorder::text(&proxy.sent));
    assert_eq!(heads.len(), 2, "a probe and the upload");
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(!lower.contains("transfer-encoding"), "{head}");
    }
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("content-length: 0\r\n"),
        "probe: {}",
        heads[0]
    );
    assert!(
        !heads[0].contains("task_id="),
        "the probe carries no task: {}",
        heads[0]
    );
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .contains(&format!("content-length: {length}\r\n")),
        "{}",
        heads[1]
    );
    assert!(heads[1].contains("task_id="), "{}", heads[1]);
}

#[test]
fn a_401_on_upload_means_one_new_login() {
    let dir = tempfile::tempdir().unwrap();
    let plain = xapi_sim::spawn(xapi_sim::Config::new(dir.path().join("state"))).unwrap();
    let proxy = recording_proxy(plain.addr());
    let session = Connect::new(&format!("http://{}", proxy.addr))
        .allow_plaintext(true)
        .options(fast_options())
        .login(xapi_sim::DEFAULT_USER, xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap();
    let length = 1 << 20;
    let vdi = new_vdi(&session, length);
    let task = session.task_create("t", "").unwrap();
    // End the session behind the client's back: the upload's probe meets a 401.
    session.call_void("session.logout", &[]).unwrap();
    session
        .import_raw_vdi(
            ImportRequest::new(
                vdi,
                ImportFormat::Raw,
                std::io::repeat(1).take(length),
                length,
            )
            .task(task),
        )
        .unwrap();
    let heads = import_heads(&Recorder::text(&proxy.sent));
    assert_eq!(
        heads.len(),
        3,
        "probe (401), probe again after login, upload"
    );
    assert!(
        Recorder::text(&proxy.received).contains(" 401 "),
        "the host answered 401"
    );
    assert_eq!(plain.objects("session").len(), 1, "one new session");
}
