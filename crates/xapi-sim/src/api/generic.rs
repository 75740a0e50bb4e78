//! The calls XAPI generates for every class: records, lookups, and getters
//! and setters named after the fields.

use serde_json::Value as Json;

use super::args::Args;
use super::Ctx;
use crate::db::classes;
use crate::db::convert::from_rpc;
use crate::db::is_null;
use crate::db::schema::{Access, Class, Field, Ty};
use crate::error::ApiError;
use crate::value::Value;

#[derive(Debug, Clone, Copy)]
pub enum Generic {
    GetRecord,
    GetAll,
    GetAllRecords,
    GetByUuid,
    GetByNameLabel,
    Get(&'static Field),
    Set(&'static Field),
    AddTo(&'static Field),
    RemoveFrom(&'static Field),
    Add(&'static Field),
    Remove(&'static Field),
}

impl Generic {
    /// The generated call called `op` on `class`, if XAPI has one.
    pub fn lookup(class: &'static Class, op: &str) -> Option<Self> {
        let writable = |name: &str| class.field(name).filter(|f| f.access == Access::Rw);
        let is_map = |f: &&Field| matches!(f.ty, Ty::Map(..));
        let is_set = |f: &&Field| matches!(f.ty, Ty::Set(_));
        Some(match op {
            "get_record" => Generic::GetRecord,
            "get_all" => Generic::GetAll,
            "get_all_records" => Generic::GetAllRecords,
            "get_by_uuid" => Generic::GetByUuid,
            "get_by_name_label" if class.has_field("name_label") => Generic::GetByNameLabel,
            _ => {
                if let Some(name) = op.strip_prefix("get_") {
                    Generic::Get(class.field(name)?)
                } else if let Some(name) = op.strip_prefix("set_") {
                    Generic::Set(writable(name)?)
                } else if let Some(name) = op.strip_prefix("add_to_") {
                    Generic::AddTo(writable(name).filter(is_map)?)
                } else if let Some(name) = op.strip_prefix("remove_from_") {
                    Generic::RemoveFrom(writable(name).filter(is_map)?)
                } else if let Some(name) = op.strip_prefix("add_") {
                    Generic::Add(writable(name).filter(is_set)?)
                } else if let Some(name) = op.strip_prefix("remove_") {
                    Generic::Remove(writable(name).filter(is_set)?)
                } else {
                    return None;
                }
            }
        })
    }

    /// Parameters after the session.
    pub fn arity(self) -> usize {
        match self {
            Generic::GetAll | Generic::GetAllRecords => 0,
            Generic::GetRecord | Generic::GetByUuid | Generic::GetByNameLabel | Generic::Get(_) => {
                1
            }
            Generic::Set(_) | Generic::RemoveFrom(_) | Generic::Add(_) | Generic::Remove(_) => 2,
            Generic::AddTo(_) => 3,
        }
    }

    pub fn run(self, ctx: &mut Ctx, class: &'static Class, args: &Args) -> Result<Value, ApiError> {
        let db = &mut *ctx.db;
        match self {
            Generic::GetRecord => {
                let r = args.reference(db, 0, class.name)?;
                Ok(db.record_value(class, &r).unwrap_or(Value::Nil))
            }
            Generic::GetAll => Ok(Value::Array(
                db.refs(class.name).into_iter().map(Value::Str).collect(),
            )),
            Generic::GetAllRecords => Ok(Value::Struct(
                db.refs(class.name)
                    .into_iter()
                    .filter_map(|r| db.record_value(class, &r).map(|v| (r, v)))
                    .collect(),
            )),
            Generic::GetByUuid => {
                let uuid = args.str(0, "uuid")?;
                db.find_uuid(class.name, uuid)
                    .map(Value::Str)
                    .ok_or_else(|| ApiError::uuid_invalid(class.name, uuid))
            }
            Generic::GetByNameLabel => {
                let label = args.str(0, "label")?;
                Ok(Value::Array(
                    db.find(class.name, "name_label", label)
                        .into_iter()
                        .map(Value::Str)
                        .collect(),
                ))
            }
            Generic::Get(f) => {
                let r = args.reference(db, 0, class.name)?;
                Ok(db.field_value(class, &r, f.name).unwrap_or(Value::Nil))
            }
            Generic::Set(f) => {
                let r = args.reference(db, 0, class.name)?;
                let v = from_rpc(f.name, f.ty, args.at(1))?;
                if let (Ty::Ref(target), Some(r)) = (f.ty, v.as_str()) {
                    if !is_null(r) && classes::class(target).is_some() && !db.exists(target, r) {
                        return Err(ApiError::handle_invalid(target, r));
                    }
                }
                if let Some(rec) = db.get_mut(class.name, &r) {
                    rec.insert(f.name.to_owned(), v);
                }
                Ok(Value::Nil)
            }
            Generic::AddTo(f) => {
                let r = args.reference(db, 0, class.name)?;
                let (Ty::Map(kt, vt), Some(rec)) = (f.ty, db.get(class.name, &r)) else {
                    return Err(ApiError::internal("not a map"));
                };
                let key = match from_rpc(f.name, *kt, args.at(1))? {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                let value = from_rpc(f.name, *vt, args.at(2))?;
                if rec.get(f.name).and_then(|m| m.get(&key)).is_some() {
                    return Err(ApiError::with(
                        "MAP_DUPLICATE_KEY",
                        vec![class.name.to_owned(), f.name.to_owned(), r.clone(), key],
                    ));
                }
                if let Some(Json::Object(m)) = db
                    .get_mut(class.name, &r)
                    .and_then(|rec| rec.get_mut(f.name))
                {
                    m.insert(key, value);
                }
                Ok(Value::Nil)
            }
            Generic::RemoveFrom(f) => {
                let r = args.reference(db, 0, class.name)?;
                let key = args.str(1, "key")?.to_owned();
                if let Some(Json::Object(m)) = db
                    .get_mut(class.name, &r)
                    .and_then(|rec| rec.get_mut(f.name))
                {
                    m.remove(&key);
                }
                Ok(Value::Nil)
            }
            Generic::Add(f) | Generic::Remove(f) => {
                let r = args.reference(db, 0, class.name)?;
                let Ty::Set(item) = f.ty else {
                    return Err(ApiError::internal("not a set"));
                };
                let value = from_rpc(f.name, *item, args.at(1))?;
                let adding = matches!(self, Generic::Add(_));
                if let Some(Json::Array(items)) = db
                    .get_mut(class.name, &r)
                    .and_then(|rec| rec.get_mut(f.name))
                {
                    if !adding {
                        items.retain(|i| *i != value);
                    } else if !items.contains(&value) {
                        items.push(value);
                    }
                }
                Ok(Value::Nil)
            }
        }
    }
}
