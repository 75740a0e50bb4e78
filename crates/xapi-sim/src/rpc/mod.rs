//! The RPC endpoints: read the call, run it, answer in the protocol it came in.

pub mod jsonrpc;
pub mod xmlrpc;

use crate::api::{self, Incoming};
use crate::http::conn::Conn;
use crate::http::request::Head;
use crate::http::response;
use crate::sim::Sim;

/// Bodies larger than this are not RPC calls.
const MAX_BODY: u64 = 64 << 20;

pub const THUMBPRINT_REQUEST: &str = "x-xenapi-request-host-certificate-thumbprint";

#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    Json,
    Xml,
}

/// Answers one RPC request; returns whether the connection stays open.
pub fn serve(sim: &Sim, conn: &mut Conn, head: &Head, protocol: Protocol) -> bool {
    let version = head.version();
    let length = match head.content_length() {
        Ok(Some(n)) if n <= MAX_BODY && head.header("transfer-encoding").is_none() => n,
        Ok(None) if head.header("transfer-encoding").is_none() => 0,
        _ => {
            let _ = conn.write_all(&response::bare(version, "400 Bad Request", &[]));
            return false;
        }
    };
    let Ok(body) = conn.read_body(length as usize) else {
        return false;
    };
    let thumbprint_request = head.header(THUMBPRINT_REQUEST);
    let (content_type, reply_body, extra) = match protocol {
        Protocol::Json => match jsonrpc::parse(&body) {
            Ok(call) => {
                let reply = api::call(
                    sim,
                    Incoming {
                        method: &call.method,
                        params: call.params,
                        thumbprint_request,
                    },
                );
                (
                    "application/json",
                    jsonrpc::reply(call.version, &call.id, &reply.result),
                    reply.headers,
                )
            }
            Err(e) => return reject(conn, version, &e),
        },
        Protocol::Xml => match xmlrpc::parse_call(&body) {
            Ok((method, params)) => {
                let reply = api::call(
                    sim,
                    Incoming {
                        method: &method,
                        params,
                        thumbprint_request,
                    },
                );
                ("text/xml", xmlrpc::reply(&reply.result), reply.headers)
            }
            Err(e) => return reject(conn, version, &e),
        },
    };
    let keep_alive = head.keep_alive();
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", content_type),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Headers", "X-Requested-With"),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let out = response::with_body(version, "200 OK", keep_alive, &headers, &reply_body);
    conn.write_all(&out).is_ok() && keep_alive
}

/// A body that is not a call: XAPI's server answers 500.
fn reject(conn: &mut Conn, version: &str, why: &str) -> bool {
    let _ = conn.write_all(&response::internal_error(version, why));
    false
}
