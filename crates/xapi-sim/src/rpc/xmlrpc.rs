//! XML-RPC as XAPI speaks it on `/` and `/RPC2` (the official SDK's protocol):
//! results wrapped in `{Status, Value}` or `{Status, ErrorDescription}`
//! structs, int64 sent as strings, datetimes as `dateTime.iso8601`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::ApiError;
use crate::value::Value;

/// A parsed XML element: its name and its children in order.
#[derive(Debug)]
struct Element {
    name: String,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }
}

fn parse_tree(body: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = vec![Element {
        name: String::new(),
        children: Vec::new(),
    }];
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("bad XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => stack.push(Element {
                name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                children: Vec::new(),
            }),
            Event::Empty(e) => {
                let el = Element {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    children: Vec::new(),
                };
                stack
                    .last_mut()
                    .ok_or("unbalanced XML")?
                    .children
                    .push(Node::Element(el));
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced XML")?;
                stack
                    .last_mut()
                    .ok_or("unbalanced XML")?
                    .children
                    .push(Node::Element(done));
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| format!("bad XML text: {e}"))?;
                stack
                    .last_mut()
                    .ok_or("unbalanced XML")?
                    .children
                    .push(Node::Text(text.into_owned()));
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(&c.into_inner()).into_owned();
                stack
                    .last_mut()
                    .ok_or("unbalanced XML")?
                    .children
                    .push(Node::Text(text));
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let mut root = stack.pop().ok_or("unbalanced XML")?;
    if !stack.is_empty() {
        return Err("the XML document is not closed".into());
    }
    root.children.retain(|n| matches!(n, Node::Element(_)));
    root.children
        .pop()
        .and_then(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
        .ok_or_else(|| "empty XML document".into())
}

/// Parses a `methodCall` into the method name and its parameters.
pub fn parse_call(body: &[u8]) -> Result<(String, Vec<Value>), String> {
    let root = parse_tree(body)?;
    if root.name != "methodCall" {
        return Err(format!("expected methodCall, found {}", root.name));
    }
    let method = root
        .child("methodName")
        .ok_or("no methodName")?
        .text()
        .trim()
        .to_owned();
    let params = match root.child("params") {
        Some(params) => params
            .elements()
            .filter(|p| p.name == "param")
            .map(|p| {
                p.child("value")
                    .ok_or_else(|| "param without value".to_owned())
                    .and_then(parse_value)
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok((method, params))
}

fn parse_value(value: &Element) -> Result<Value, String> {
    let Some(typed) = value.elements().next() else {
        // A value with no type element is a string.
        return Ok(Value::Str(value.text()));
    };
    let text = typed.text();
    Ok(match typed.name.as_str() {
        "string" => Value::Str(text),
        "int" | "i4" | "i8" => Value::Int(
            text.trim()
                .parse()
                .map_err(|_| format!("bad int {text:?}"))?,
        ),
        "boolean" => Value::Bool(match text.trim() {
            "1" => true,
            "0" => false,
            other => return Err(format!("bad boolean {other:?}")),
        }),
        "double" => Value::Float(
            text.trim()
                .parse()
                .map_err(|_| format!("bad double {text:?}"))?,
        ),
        "dateTime.iso8601" => Value::DateTime(text.trim().to_owned()),
        "base64" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| format!("bad base64: {e}"))?;
            Value::Str(String::from_utf8_lossy(&bytes).into_owned())
        }
        "nil" => Value::Nil,
        "array" => {
            let data = typed.child("data").ok_or("array without data")?;
            Value::Array(
                data.elements()
                    .filter(|e| e.name == "value")
                    .map(parse_value)
                    .collect::<Result<_, _>>()?,
            )
        }
        "struct" => {
            let mut members = BTreeMap::new();
            for m in typed.elements().filter(|e| e.name == "member") {
                let name = m.child("name").ok_or("member without name")?.text();
                let v = parse_value(m.child("value").ok_or("member without value")?)?;
                members.insert(name, v);
            }
            Value::Struct(members)
        }
        other => return Err(format!("unknown XML-RPC type {other}")),
    })
}

/// A value as XAPI writes it: `<value>...</value>`, strings bare, int64 as
/// strings.
pub fn value_xml(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Str(s) => out.push_str(&escape(s.as_str())),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = write!(out, "<double>{f}</double>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::DateTime(s) => {
            let _ = write!(
                out,
                "<dateTime.iso8601>{}</dateTime.iso8601>",
                escape(s.as_str())
            );
        }
        Value::Nil => out.push_str("<nil/>"),
        Value::Array(items) => {
            out.push_str("<array><data>");
            for i in items {
                write_value(out, i);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (k, mv) in members {
                let _ = write!(out, "<member><name>{}</name>", escape(k.as_str()));
                write_value(out, mv);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

fn response(inner: &Value) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodResponse><params><param>{}</param></params></methodResponse>",
        value_xml(inner)
    )
}

/// The response body for a call's outcome.
pub fn reply(result: &Result<Value, ApiError>) -> Vec<u8> {
    let mut s = BTreeMap::new();
    match result {
        Ok(v) => {
            s.insert("Status".to_owned(), Value::str("Success"));
            s.insert("Value".to_owned(), v.clone());
        }
        Err(e) => {
            s.insert("Status".to_owned(), Value::str("Failure"));
            s.insert(
                "ErrorDescription".to_owned(),
                Value::Array(e.description().into_iter().map(Value::Str).collect()),
            );
        }
    }
    response(&Value::Struct(s)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_python_sends() {
        let body = br#"<?xml version='1.0'?>
<methodCall>
<methodName>VDI.create</methodName>
<params>
<param><value><string>OpaqueRef:s</string></value></param>
<param><value><struct>
<member><name>virtual_size</name><value><string>1048576</string></value></member>
<member><name>sharable</name><value><boolean>0</boolean></value></member>
<member><name>tags</name><value><array><data>
</data></array></value></member>
<member><name>n</name><value><int>3</int></value></member>
<member><name>bare</name><value> spaced </value></member>
<member><name>none</name><value><nil/></value></member>
</struct></value></param>
</params>
</methodCall>"#;
        let (method, params) = parse_call(body).unwrap();
        assert_eq!(method, "VDI.create");
        assert_eq!(params[0], Value::str("OpaqueRef:s"));
        let Value::Struct(m) = &params[1] else {
            panic!()
        };
        assert_eq!(m["virtual_size"], Value::str("1048576"));
        assert_eq!(m["sharable"], Value::Bool(false));
        assert_eq!(m["tags"], Value::Array(vec![]));
        assert_eq!(m["n"], Value::Int(3));
        assert_eq!(m["bare"], Value::str(" spaced "));
        assert_eq!(m["none"], Value::Nil);
    }

    #[test]
    fn round_trips_escaped_text_and_sends_ints_as_strings() {
        let v = Value::Array(vec![Value::str("a<b&c"), Value::Int(5)]);
        let xml = value_xml(&v);
        assert_eq!(xml, "<value><array><data><value>a&lt;b&amp;c</value><value>5</value></data></array></value>");
        let call = format!("<methodCall><methodName>m</methodName><params><param>{xml}</param></params></methodCall>");
        let (_, params) = parse_call(call.as_bytes()).unwrap();
        assert_eq!(
            params[0],
            Value::Array(vec![Value::str("a<b&c"), Value::str("5")])
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_call(b"<methodCall><methodName>x</methodName>").is_err());
        assert!(parse_call(b"not xml at all").is_err());
    }
}
