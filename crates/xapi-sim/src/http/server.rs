//! Accepting connections (a thread each), routing requests by path, and
//! stopping: shut every open connection and wait for their threads.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::conn::{Conn, Stream};
use super::request::{Head, HeadError};
use super::response;
use crate::sim::Sim;
use crate::{control, rpc, transfer};

#[derive(Default)]
struct Live {
    sockets: Mutex<HashMap<u64, TcpStream>>,
    gone: Condvar,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a connection from the live set when its thread ends.
struct Registered {
    live: Arc<Live>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.live.lock().remove(&self.id);
        self.live.gone.notify_all();
    }
}

pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    live: Arc<Live>,
}

/// Serves `listener` on background threads until `Server::stop`.
pub fn start(
    sim: Arc<Sim>,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Live::default());
    let accept = {
        let (stop, live) = (stop.clone(), live.clone());
        thread::Builder::new()
            .name("xapi-sim-accept".into())
            .spawn(move || accept_loop(&sim, &listener, tls, &stop, &live))?
    };
    Ok(Server {
        addr,
        stop,
        accept: Some(accept),
        live,
    })
}

fn accept_loop(
    sim: &Arc<Sim>,
    listener: &TcpListener,
    tls: Option<Arc<ServerConfig>>,
    stop: &AtomicBool,
    live: &Arc<Live>,
) {
    let ids = AtomicU64::new(0);
    for incoming in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let tcp = match incoming {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = tcp.try_clone() {
            live.lock().insert(id, clone);
        }
        let registered = Registered {
            live: live.clone(),
            id,
        };
        let stream = match &tls {
            None => Stream::Plain(tcp),
            Some(config) => match ServerConnection::new(config.clone()) {
                Ok(c) => Stream::Tls(Box::new(StreamOwned::new(c, tcp))),
                Err(e) => {
                    tracing::warn!("TLS setup failed: {e}");
                    continue;
                }
            },
        };
        let sim = sim.clone();
        let spawned = thread::Builder::new()
            .name("xapi-sim-conn".into())
            .spawn(move || {
                let _registered = registered;
                serve(&sim, Conn::new(stream));
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a connection thread: {e}");
        }
    }
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, shuts every open connection and waits (a while) for
    /// their threads, so the state directory is quiet afterwards.
    pub fn stop(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let mut sockets = self.live.lock();
        for s in sockets.values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !sockets.is_empty() && std::time::Instant::now() < deadline {
            sockets = match self
                .live
                .gone
                .wait_timeout(sockets, Duration::from_millis(100))
            {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(sim: &Sim, mut conn: Conn) {
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(HeadError::Io(_)) => break,
            Err(e) => {
                let _ = conn.write_all(&response::bare("1.1", "400 Bad Request", &[]));
                tracing::debug!("{e}");
                break;
            }
        };
        tracing::debug!(method = %head.method, path = %head.path, "request");
        if !route(sim, &mut conn, &head) {
            break;
        }
    }
    conn.finish();
}

/// Answers one request; returns whether the connection may carry another.
fn route(sim: &Sim, conn: &mut Conn, head: &Head) -> bool {
    let path = head.path.as_str();
    match (head.method.as_str(), path) {
        ("POST", "/jsonrpc") => rpc::serve(sim, conn, head, rpc::Protocol::Json),
        ("POST", "/" | "/RPC2") => rpc::serve(sim, conn, head, rpc::Protocol::Xml),
        ("PUT", p) if p.starts_with("/import_raw_vdi") => {
            transfer::import::serve(sim, conn, head);
            false
        }
        ("GET", p) if p.starts_with("/export_raw_vdi") => {
            transfer::export::serve(sim, conn, head);
            false
        }
        (_, p) if p.starts_with(control::PREFIX) => control::serve(sim, conn, head),
        _ => {
            let body = b"<html><body><h1>HTTP 404 not found</h1></body></html>";
            let _ = conn.write_all(&response::with_body(
                head.version(),
                "404 Not Found",
                false,
                &[("content-type", "text/html")],
                body,
            ));
            false
        }
    }
}
