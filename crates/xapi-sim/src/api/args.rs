//! Reading a call's parameters with XAPI's errors for wrong ones.

use crate::db::classes::class;
use crate::db::convert::{default_json, from_rpc, int_of};
use crate::db::schema::{Access, Class, Ty};
use crate::db::{Db, Record};
use crate::error::ApiError;
use crate::value::Value;

static NIL: Value = Value::Nil;

/// The parameters after the session.
pub struct Args<'a> {
    pub values: &'a [Value],
}

impl<'a> Args<'a> {
    pub fn at(&self, i: usize) -> &'a Value {
        self.values.get(i).unwrap_or(&NIL)
    }

    pub fn str(&self, i: usize, name: &str) -> Result<&'a str, ApiError> {
        self.at(i)
            .as_str()
            .ok_or_else(|| ApiError::field_type_error(name))
    }

    pub fn int(&self, i: usize, name: &str) -> Result<i64, ApiError> {
        int_of(self.at(i)).ok_or_else(|| ApiError::field_type_error(name))
    }

    /// A ref to an existing object of `class`, else `HANDLE_INVALID`.
    pub fn reference(&self, db: &Db, i: usize, class: &str) -> Result<String, ApiError> {
        let r = self.str(i, "self")?;
        existing(db, class, r)
    }
}

/// `reference` if it names an object of `class`, else `HANDLE_INVALID`.
pub fn existing(db: &Db, class: &str, reference: &str) -> Result<String, ApiError> {
    if db.exists(class, reference) {
        Ok(reference.to_owned())
    } else {
        Err(ApiError::handle_invalid(class, reference))
    }
}

/// Reads a constructor record as XAPI's generated server does: fields in the
/// datamodel's order, each converted to its type, missing ones defaulted or
/// reported as XAPI reports them.
pub fn ctor_record(class_name: &str, v: &Value) -> Result<Record, ApiError> {
    let class: &Class = class(class_name).ok_or_else(|| ApiError::internal("unknown class"))?;
    let Value::Struct(members) = v else {
        return Err(ApiError::internal("Failure(\"bad __structure\")"));
    };
    let mut record = Record::new();
    for f in class.fields {
        if f.access == Access::Dynamic || f.name == "uuid" || matches!(f.ty, Ty::Reverse(..)) {
            continue;
        }
        let json = match members.get(f.name) {
            Some(given) => from_rpc(f.name, f.ty, given)?,
            None => default_json(f).ok_or_else(|| {
                ApiError::internal(&format!(
                    "Server_helpers.Dispatcher_FieldNotFound(\"{}\")",
                    f.name
                ))
            })?,
        };
        record.insert(f.name.to_owned(), json);
    }
    Ok(record)
}
