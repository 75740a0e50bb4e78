//! The object database: XAPI objects by class and `OpaqueRef`, with their
//! fields stored as JSON, saved atomically as one JSON file in the state
//! directory after every change.

mod class_vm;
pub mod classes;
pub mod convert;
pub mod schema;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use classes::class;
use schema::{Class, Ty, NULL_REF};

use crate::error::{Error, Result};
use crate::value::Value;

/// The fields of one object.
pub type Record = serde_json::Map<String, Json>;

const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    tables: BTreeMap<String, BTreeMap<String, Record>>,
}

pub struct Db {
    tables: BTreeMap<String, BTreeMap<String, Record>>,
    path: PathBuf,
    dirty: bool,
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn new_ref() -> String {
    format!("OpaqueRef:{}", new_uuid())
}

impl Db {
    /// Loads the database saved at `path`, or starts an empty one.
    pub fn open(path: &Path) -> Result<Self> {
        let mut db = Db {
            tables: BTreeMap::new(),
            path: path.to_owned(),
            dirty: false,
        };
        match fs::read(path) {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| Error::State {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
                if saved.format != FORMAT {
                    return Err(Error::State {
                        path: path.to_owned(),
                        reason: format!("format {} is not {FORMAT}", saved.format),
                    });
                }
                db.tables = saved.tables;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        }
        Ok(db)
    }

    /// Writes the persistent classes to a temporary file, syncs it and
    /// renames it over the old one, so a crash leaves the old or the new state.
    pub fn save(&mut self) -> Result<()> {
        let tables: BTreeMap<String, BTreeMap<String, Record>> = self
            .tables
            .iter()
            .filter(|(name, _)| class(name).is_some_and(|c| c.persist))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let saved = Saved {
            format: FORMAT,
            tables,
        };
        let bytes = serde_json::to_vec_pretty(&saved)
            .map_err(|e| Error::io("encoding the state", std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let io = |what: &str, e| Error::io(format!("{what} {}", tmp.display()), e);
        let mut f = File::create(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(&bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| io("renaming", e))?;
        if let Some(dir) = self.path.parent() {
            // The rename is durable once the directory is synced.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.dirty = false;
        Ok(())
    }

    /// Whether something changed since the last save.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Creates an object: given fields are kept as they are, missing ones get
    /// their defaults (or the type's zero), `uuid` a fresh one. Returns the ref.
    pub fn create(&mut self, class: &Class, mut fields: Record) -> String {
        for f in class.fields {
            if matches!(f.ty, Ty::Reverse(..)) || fields.contains_key(f.name) {
                continue;
            }
            let value = if f.name == "uuid" {
                Json::String(new_uuid())
            } else {
                convert::default_json(f).unwrap_or_else(|| convert::zero_of(f.ty))
            };
            fields.insert(f.name.to_owned(), value);
        }
        let reference = new_ref();
        self.tables
            .entry(class.name.to_owned())
            .or_default()
            .insert(reference.clone(), fields);
        self.dirty = true;
        reference
    }

    pub fn exists(&self, class: &str, reference: &str) -> bool {
        self.get(class, reference).is_some()
    }

    pub fn get(&self, class: &str, reference: &str) -> Option<&Record> {
        self.tables.get(class)?.get(reference)
    }

    /// A record to change; the database is marked as needing a save.
    pub fn get_mut(&mut self, class: &str, reference: &str) -> Option<&mut Record> {
        let record = self.tables.get_mut(class)?.get_mut(reference)?;
        self.dirty = true;
        Some(record)
    }

    /// A record to change without forcing a save (task progress: it is saved
    /// with the next real change).
    pub fn get_mut_quiet(&mut self, class: &str, reference: &str) -> Option<&mut Record> {
        self.tables.get_mut(class)?.get_mut(reference)
    }

    pub fn destroy(&mut self, class: &str, reference: &str) -> Option<Record> {
        let gone = self.tables.get_mut(class)?.remove(reference);
        if gone.is_some() {
            self.dirty = true;
        }
        gone
    }

    /// All refs of a class, in a stable order.
    pub fn refs(&self, class: &str) -> Vec<String> {
        self.tables
            .get(class)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A string field of an object ("" when absent).
    pub fn str_of<'a>(&'a self, class: &str, reference: &str, field: &str) -> &'a str {
        self.get(class, reference)
            .and_then(|r| r.get(field))
            .and_then(Json::as_str)
            .unwrap_or("")
    }

    pub fn int_of(&self, class: &str, reference: &str, field: &str) -> i64 {
        self.get(class, reference)
            .and_then(|r| r.get(field))
            .and_then(Json::as_i64)
            .unwrap_or(0)
    }

    pub fn bool_of(&self, class: &str, reference: &str, field: &str) -> bool {
        self.get(class, reference)
            .and_then(|r| r.get(field))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    }

    /// Refs of the objects of `class` whose string `field` equals `value`.
    pub fn find(&self, class: &str, field: &str, value: &str) -> Vec<String> {
        self.tables
            .get(class)
            .map(|t| {
                t.iter()
                    .filter(|(_, r)| r.get(field).and_then(Json::as_str) == Some(value))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn find_uuid(&self, class: &str, uuid: &str) -> Option<String> {
        self.find(class, "uuid", uuid).into_iter().next()
    }

    /// One field as it goes on the wire (computed fields included).
    pub fn field_value(&self, class: &Class, reference: &str, field: &str) -> Option<Value> {
        let f = class.field(field)?;
        if let Ty::Reverse(other, back) = f.ty {
            let refs = self.find(other, back, reference);
            return Some(Value::Array(refs.into_iter().map(Value::Str).collect()));
        }
        let record = self.get(class.name, reference)?;
        let json = record
            .get(field)
            .cloned()
            .unwrap_or_else(|| convert::zero_of(f.ty));
        Some(convert::to_rpc(f.ty, &json))
    }

    /// A whole record as `get_record` returns it.
    pub fn record_value(&self, class: &Class, reference: &str) -> Option<Value> {
        self.get(class.name, reference)?;
        let members = class
            .fields
            .iter()
            .filter_map(|f| {
                self.field_value(class, reference, f.name)
                    .map(|v| (f.name.to_owned(), v))
            })
            .collect();
        Some(Value::Struct(members))
    }

    /// A whole record as plain JSON with the computed fields filled in, for
    /// assertions in tests.
    pub fn record_json(&self, class: &Class, reference: &str) -> Option<Json> {
        let mut record = self.get(class.name, reference)?.clone();
        for f in class.fields {
            if let Ty::Reverse(other, back) = f.ty {
                let refs = self.find(other, back, reference);
                record.insert(f.name.to_owned(), Json::from(refs));
            }
        }
        Some(Json::Object(record))
    }
}

/// Whether a string is XAPI's null reference (or empty).
pub fn is_null(reference: &str) -> bool {
    reference.is_empty() || reference == NULL_REF
}
