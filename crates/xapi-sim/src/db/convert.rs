//! Conversions between stored field values (plain JSON) and RPC values, by
//! field type: ints stay ints, datetimes become `DateTime`, and values coming
//! in are checked against the type as XAPI's unmarshalling does.

use serde_json::Value as Json;

use super::schema::{Def, Field, Ty, EPOCH, NULL_REF};
use crate::error::ApiError;
use crate::value::Value;

/// The stored form of a field's default, or `None` when it is required.
pub fn default_json(field: &Field) -> Option<Json> {
    Some(match field.def {
        Def::Required => return None,
        Def::Str(s) => Json::String(s.to_owned()),
        Def::Int(i) => Json::from(i),
        Def::Float(f) => Json::from(f),
        Def::Bool(b) => Json::Bool(b),
        Def::Null => Json::String(NULL_REF.to_owned()),
        Def::Epoch => Json::String(EPOCH.to_owned()),
        Def::Empty => empty_of(field.ty),
    })
}

/// The zero value of a type, for fields an internal constructor left out.
pub fn zero_of(ty: Ty) -> Json {
    match ty {
        Ty::Str | Ty::Enum(_) => Json::String(String::new()),
        Ty::Ref(_) => Json::String(NULL_REF.to_owned()),
        Ty::DateTime => Json::String(EPOCH.to_owned()),
        Ty::Int => Json::from(0),
        Ty::Float => Json::from(0.0),
        Ty::Bool => Json::Bool(false),
        Ty::Set(_) | Ty::Map(..) | Ty::Reverse(..) => empty_of(ty),
    }
}

fn empty_of(ty: Ty) -> Json {
    match ty {
        Ty::Map(..) => Json::Object(serde_json::Map::new()),
        _ => Json::Array(Vec::new()),
    }
}

/// A stored value as it goes on the wire.
pub fn to_rpc(ty: Ty, json: &Json) -> Value {
    match ty {
        Ty::Str | Ty::Ref(_) | Ty::Enum(_) => match json {
            Json::String(s) => Value::Str(s.clone()),
            other => Value::Str(other.to_string()),
        },
        Ty::Int => Value::Int(json.as_i64().unwrap_or(0)),
        Ty::Float => Value::Float(json.as_f64().unwrap_or(0.0)),
        Ty::Bool => Value::Bool(json.as_bool().unwrap_or(false)),
        Ty::DateTime => Value::DateTime(json.as_str().unwrap_or(EPOCH).to_owned()),
        Ty::Set(item) => Value::Array(
            json.as_array()
                .map(|a| a.iter().map(|j| to_rpc(*item, j)).collect())
                .unwrap_or_default(),
        ),
        Ty::Map(_, val) => Value::Struct(
            json.as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, j)| (k.clone(), to_rpc(*val, j)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Ty::Reverse(..) => Value::Array(Vec::new()),
    }
}

/// A value from a call, checked against the field's type and stored form.
/// Wrong kinds of value give `FIELD_TYPE_ERROR [field]`; a string outside an
/// enumeration gives `INVALID_VALUE [field, value]`.
pub fn from_rpc(field: &str, ty: Ty, v: &Value) -> Result<Json, ApiError> {
    let type_error = || ApiError::field_type_error(field);
    Ok(match ty {
        Ty::Str | Ty::Ref(_) => Json::String(v.as_str().ok_or_else(type_error)?.to_owned()),
        Ty::Enum(names) => {
            let s = v.as_str().ok_or_else(type_error)?;
            let name = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(s))
                .ok_or_else(|| ApiError::invalid_value(field, s))?;
            Json::String((*name).to_owned())
        }
        Ty::Int => Json::from(int_of(v).ok_or_else(type_error)?),
        Ty::Float => Json::from(match v {
            Value::Float(f) => *f,
            Value::Int(i) => *i as f64,
            Value::Str(s) => s.trim().parse().map_err(|_| type_error())?,
            _ => return Err(type_error()),
        }),
        Ty::Bool => Json::Bool(bool_of(v).ok_or_else(type_error)?),
        Ty::DateTime => Json::String(v.as_str().ok_or_else(type_error)?.to_owned()),
        Ty::Set(item) => match v {
            Value::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|i| from_rpc(field, *item, i))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(type_error()),
        },
        Ty::Map(key, val) => match v {
            Value::Struct(members) => {
                let mut out = serde_json::Map::new();
                for (k, mv) in members {
                    let k = match from_rpc(field, *key, &Value::Str(k.clone()))? {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(k, from_rpc(field, *val, mv)?);
                }
                Json::Object(out)
            }
            _ => return Err(type_error()),
        },
        Ty::Reverse(..) => return Err(type_error()),
    })
}

/// An int64 parameter: a JSON number, or a string as XML-RPC carries them.
pub fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}
