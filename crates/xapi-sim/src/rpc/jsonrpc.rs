//! JSON-RPC 2.0 and 1.0 as XAPI speaks them on `/jsonrpc`: 2.0 when the body
//! says `"jsonrpc":"2.0"`, else 1.0; `id` is required; failures carry the
//! error code and its parameters.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::error::ApiError;
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug)]
pub struct Call {
    pub version: Version,
    pub id: Json,
    pub method: String,
    pub params: Vec<Value>,
}

/// Parses a request body; the error says what is missing.
pub fn parse(body: &[u8]) -> Result<Call, String> {
    let doc: Json = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("the request is not a JSON object")?;
    let version = match obj.get("jsonrpc") {
        Some(Json::String(v)) if v == "2.0" => Version::V2,
        _ => Version::V1,
    };
    let id = obj.get("id").cloned().ok_or("the request has no id")?;
    let method = obj
        .get("method")
        .and_then(Json::as_str)
        .ok_or("the request has no method")?
        .to_owned();
    let params = match obj.get("params") {
        Some(Json::Array(items)) => items.iter().map(value_of_json).collect(),
        None => Vec::new(),
        Some(_) => return Err("params is not an array".into()),
    };
    Ok(Call {
        version,
        id,
        method,
        params,
    })
}

/// The response body for a call.
pub fn reply(version: Version, id: &Json, result: &Result<Value, ApiError>) -> Vec<u8> {
    let doc = match (version, result) {
        (Version::V2, Ok(v)) => json!({"jsonrpc": "2.0", "result": json_of_value(v), "id": id}),
        (Version::V2, Err(e)) => json!({
            "jsonrpc": "2.0",
            "error": {"code": 1, "message": e.code, "data": e.params},
            "id": id,
        }),
        (Version::V1, Ok(v)) => json!({"result": json_of_value(v), "error": null, "id": id}),
        (Version::V1, Err(e)) => json!({"result": null, "error": e.description(), "id": id}),
    };
    doc.to_string().into_bytes()
}

pub fn value_of_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(value_of_json).collect()),
        Json::Object(o) => Value::Struct(
            o.iter()
                .map(|(k, v)| (k.clone(), value_of_json(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

pub fn json_of_value(v: &Value) -> Json {
    match v {
        Value::Str(s) | Value::DateTime(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bool(b) => Json::Bool(*b),
        Value::Nil => Json::Null,
        Value::Array(a) => Json::Array(a.iter().map(json_of_value).collect()),
        Value::Struct(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), json_of_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_follows_the_jsonrpc_member() {
        let v2 = parse(br#"{"jsonrpc":"2.0","method":"a.b","params":["x",1],"id":7}"#).unwrap();
        assert_eq!(v2.version, Version::V2);
        assert_eq!(v2.params, vec![Value::str("x"), Value::Int(1)]);
        let v1 = parse(br#"{"method":"a.b","params":[],"id":"q"}"#).unwrap();
        assert_eq!(v1.version, Version::V1);
        assert!(parse(br#"{"jsonrpc":"2.0","method":"a.b","params":[]}"#).is_err());
    }

    #[test]
    fn failures_have_both_shapes() {
        let err = Err(ApiError::new("HANDLE_INVALID", &["VM", "OpaqueRef:x"]));
        let v2: Json = serde_json::from_slice(&reply(Version::V2, &json!(1), &err)).unwrap();
        assert_eq!(v2["error"]["message"], "HANDLE_INVALID");
        assert_eq!(v2["error"]["data"], json!(["VM", "OpaqueRef:x"]));
        let v1: Json = serde_json::from_slice(&reply(Version::V1, &json!(1), &err)).unwrap();
        assert_eq!(v1["error"], json!(["HANDLE_INVALID", "VM", "OpaqueRef:x"]));
        assert_eq!(v1["result"], Json::Null);
    }
}
