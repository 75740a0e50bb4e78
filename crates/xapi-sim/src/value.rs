//! The values that travel in RPC calls, shaped like XAPI's own `Rpc.t`: both
//! wire formats (JSON-RPC and XML-RPC) are codecs of this one type.

use std::collections::BTreeMap;

/// One RPC value. `DateTime` is kept apart from `Str` because XML-RPC sends it
/// as `dateTime.iso8601` while JSON-RPC sends a plain string.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    DateTime(String),
    Array(Vec<Value>),
    Struct(BTreeMap<String, Value>),
    Nil,
}

impl Value {
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    /// The string inside a `Str` (or a `DateTime`), if that is what this is.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::DateTime(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
