//! JSON-RPC 2.0 on `/jsonrpc`: requests, replies, XAPI's error forms.

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Url;
use serde_json::{json, Value};

use crate::error::{Error, Result, XapiError};
use crate::http::{host_of, Http};
use crate::secret::scrub;

/// What one call brought back: XAPI's answer and the reply headers.
pub(crate) struct Reply {
    pub(crate) outcome: std::result::Result<Value, XapiError>,
    pub(crate) headers: HeaderMap,
}

/// The JSON-RPC endpoint under a base URL.
pub(crate) fn endpoint(base: &Url) -> Url {
    let mut url = base.clone();
    url.set_path("/jsonrpc");
    url.set_query(None);
    url
}

/// Sends one call. `secret` (the password or session id in `params`) is scrubbed from
/// anything that could reach a message.
pub(crate) fn call(
    http: &Http,
    base: &Url,
    id: u64,
    method: &str,
    params: &[Value],
    headers: &[(&str, &str)],
    secret: &str,
) -> Result<Reply> {
    let url = endpoint(base);
    let host = host_of(base);
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
    let mut request = http.calls.post(url.clone()).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .map_err(|e| http.error(&url, method, e, secret))?;
    let status = response.status().as_u16();
    let reply_headers = response.headers().clone();
    let content_type = reply_headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response
        .text()
        .map_err(|e| http.error(&url, method, e, secret))?;
    if status == 404
        || content_type.contains("xml")
        || (status == 200 && text.trim_start().starts_with('<'))
    {
        return Err(Error::NoJsonRpc {
            host,
            status,
            content_type,
        });
    }
    let protocol = |detail: String| Error::Protocol {
        host: host.clone(),
        what: method.to_string(),
        detail,
    };
    if status != 200 {
        return Err(protocol(format!(
            "HTTP {status}: {}",
            scrub(&excerpt(&text), secret)
        )));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        protocol(format!(
            "not JSON ({e}): {}",
            scrub(&excerpt(&text), secret)
        ))
    })?;
    let outcome = parse_reply(value).map_err(protocol)?;
    let outcome = outcome.map_err(|mut e| {
        e.params = e.params.iter().map(|p| scrub(p, secret)).collect();
        e
    });
    Ok(Reply {
        outcome,
        headers: reply_headers,
    })
}

/// Splits a decoded reply into XAPI's result or XAPI's error (2.0 object or 1.0 list form).
pub(crate) fn parse_reply(
    mut value: Value,
) -> std::result::Result<std::result::Result<Value, XapiError>, String> {
    let error = value
        .get_mut("error")
        .map(Value::take)
        .unwrap_or(Value::Null);
    match error {
        Value::Null => match value.get_mut("result") {
            Some(result) => Ok(Ok(result.take())),
            None => Err("reply has neither result nor error".into()),
        },
        // JSON-RPC 2.0: {"code":1,"message":"CODE","data":[params]}
        Value::Object(map) => {
            let code = map
                .get("message")
                .and_then(Value::as_str)
                .ok_or("error object without a message")?;
            let params = match map.get("data") {
                Some(Value::Array(items)) => items.iter().map(text_of).collect(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![text_of(other)],
            };
            Ok(Err(XapiError::new(code, params)))
        }
        // JSON-RPC 1.0 as XAPI sends it: ["CODE", params...]
        Value::Array(items) => {
            let list: Vec<String> = items.iter().map(text_of).collect();
            Ok(Err(XapiError::from_list(&list)))
        }
        Value::String(code) => Ok(Err(XapiError::new(code, Vec::new()))),
        other => Err(format!("unexpected error value {other}")),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn excerpt(text: &str) -> String {
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_gives_the_result() {
        let reply = parse_reply(json!({"jsonrpc":"2.0","result":"OpaqueRef:1","id":1})).unwrap();
        assert_eq!(reply.unwrap(), json!("OpaqueRef:1"));
    }

    #[test]
    fn version_2_errors_carry_code_and_params() {
        let reply = parse_reply(
            json!({"jsonrpc":"2.0","error":{"code":1,"message":"SR_FULL","data":["10",20]},"id":1}),
        )
        .unwrap();
        let err = reply.unwrap_err();
        assert_eq!(err.code, "SR_FULL");
        assert_eq!(err.params, vec!["10".to_string(), "20".to_string()]);
    }

    #[test]
    fn version_1_errors_are_lists() {
        let reply = parse_reply(json!({"result":null,"error":["HOST_IS_SLAVE","10.0.0.1"],"id":1}))
            .unwrap();
        let err = reply.unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.param(0)),
            ("HOST_IS_SLAVE", Some("10.0.0.1"))
        );
    }

    #[test]
    fn null_result_is_a_result() {
        assert_eq!(
            parse_reply(json!({"jsonrpc":"2.0","result":null,"id":1}))
                .unwrap()
                .unwrap(),
            Value::Null
        );
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        assert!(parse_reply(json!({"jsonrpc":"2.0","id":1})).is_err());
        assert!(parse_reply(json!({"error":{"code":1},"id":1})).is_err());
        assert!(parse_reply(json!({"error":5,"id":1})).is_err());
    }

    #[test]
    fn endpoint_drops_path_and_query() {
        let url = Url::parse("https://h:4443/x?y=1").unwrap();
        assert_eq!(endpoint(&url).as_str(), "https://h:4443/jsonrpc");
    }
}
