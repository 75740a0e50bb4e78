//! The simulator's own HTTP endpoints (not XAPI's), for tests:
//!
//! - `GET /xapi-sim/faults`: the live faults as JSON (with counts left).
//! - `POST /xapi-sim/faults` with a `Faults` JSON body: replaces them all
//!   (`{}` clears them); answers with the faults now set.
//! - `POST /xapi-sim/sr-size` with `{"sr": NAME|UUID|REF, "physical_size": N}`.
//!
//! They need no credentials: the simulator is a test tool.

use serde::Deserialize;
use serde_json::json;

use crate::api::refresh_usage;
use crate::faults::Faults;
use crate::http::conn::Conn;
use crate::http::request::Head;
use crate::http::response;
use crate::sim::Sim;

pub const PREFIX: &str = "/xapi-sim/";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrSize {
    sr: String,
    physical_size: u64,
}

/// Answers one control request; returns whether the connection stays open.
pub fn serve(sim: &Sim, conn: &mut Conn, head: &Head) -> bool {
    let body = match head.content_length() {
        Ok(Some(n)) if n <= 1 << 20 => conn.read_body(n as usize).unwrap_or_default(),
        Ok(None) => Vec::new(),
        _ => {
            return answer(
                conn,
                head,
                "400 Bad Request",
                json!({"error": "bad Content-Length"}),
            )
        }
    };
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/xapi-sim/faults") => answer(conn, head, "200 OK", json!(sim.faults.get())),
        ("POST", "/xapi-sim/faults") => match serde_json::from_slice::<Faults>(&body) {
            Ok(faults) => {
                tracing::info!("faults set: {}", json!(faults));
                sim.faults.set(faults);
                answer(conn, head, "200 OK", json!(sim.faults.get()))
            }
            Err(e) => answer(
                conn,
                head,
                "400 Bad Request",
                json!({"error": e.to_string()}),
            ),
        },
        ("POST", "/xapi-sim/sr-size") => match serde_json::from_slice::<SrSize>(&body) {
            Ok(req) => match set_sr_size(sim, &req.sr, req.physical_size) {
                Ok(sr) => answer(
                    conn,
                    head,
                    "200 OK",
                    json!({"sr": sr, "physical_size": req.physical_size}),
                ),
                Err(e) => answer(conn, head, "404 Not Found", json!({"error": e})),
            },
            Err(e) => answer(
                conn,
                head,
                "400 Bad Request",
                json!({"error": e.to_string()}),
            ),
        },
        _ => answer(
            conn,
            head,
            "404 Not Found",
            json!({"error": "no such control endpoint"}),
        ),
    }
}

fn answer(conn: &mut Conn, head: &Head, status: &str, body: serde_json::Value) -> bool {
    let keep = head.keep_alive();
    let bytes = body.to_string().into_bytes();
    let out = response::with_body(
        head.version(),
        status,
        keep,
        &[("content-type", "application/json")],
        &bytes,
    );
    conn.write_all(&out).is_ok() && keep
}

/// Sets an SR's physical_size; the SR is named by ref, UUID or name_label.
pub fn set_sr_size(sim: &Sim, name: &str, size: u64) -> Result<String, String> {
    let mut db = sim.db();
    let sr = if db.exists("SR", name) {
        Some(name.to_owned())
    } else {
        db.find_uuid("SR", name)
            .or_else(|| db.find("SR", "name_label", name).into_iter().next())
    };
    let sr = sr.ok_or_else(|| format!("no SR is called {name}"))?;
    if let Some(r) = db.get_mut("SR", &sr) {
        r.insert("physical_size".into(), json!(size));
    }
    refresh_usage(sim, &mut db, &sr);
    sim.save(&mut db);
    Ok(sr)
}
