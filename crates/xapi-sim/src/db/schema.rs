//! The shape of XAPI's classes: field names, types, who may change them and
//! their defaults. The object store, the generic getters and setters and both
//! wire codecs are driven by these tables.

/// A field type, as XAPI's datamodel spells them.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Int,
    Float,
    Bool,
    DateTime,
    Ref(&'static str),
    Enum(&'static [&'static str]),
    Set(&'static Ty),
    Map(&'static Ty, &'static Ty),
    /// Not stored: the refs of the objects of class `.0` whose field `.1`
    /// points at this object (like `VM.VBDs` or `SR.VDIs`).
    Reverse(&'static str, &'static str),
}

/// Who may change a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only the server changes it (XAPI `DynamicRO`).
    Dynamic,
    /// Given to the constructor, read-only afterwards (XAPI `StaticRO`).
    Static,
    /// Given to the constructor and changed by `set_*` (XAPI `RW`).
    Rw,
}

/// A field's default when a constructor record leaves it out.
#[derive(Debug, Clone, Copy)]
pub enum Def {
    /// The constructor must supply it.
    Required,
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `OpaqueRef:NULL`.
    Null,
    /// The epoch, XAPI's "never".
    Epoch,
    /// An empty map or set.
    Empty,
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub access: Access,
    pub def: Def,
}

#[derive(Debug)]
pub struct Class {
    pub name: &'static str,
    pub fields: &'static [Field],
    /// Sessions are not kept across restarts, as in XAPI.
    pub persist: bool,
}

impl Class {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.field(name).is_some()
    }
}

pub const fn dyn_(name: &'static str, ty: Ty, def: Def) -> Field {
    Field {
        name,
        ty,
        access: Access::Dynamic,
        def,
    }
}

pub const fn st(name: &'static str, ty: Ty, def: Def) -> Field {
    Field {
        name,
        ty,
        access: Access::Static,
        def,
    }
}

pub const fn rw(name: &'static str, ty: Ty, def: Def) -> Field {
    Field {
        name,
        ty,
        access: Access::Rw,
        def,
    }
}

pub const SS: Ty = Ty::Set(&Ty::Str);
pub const MSS: Ty = Ty::Map(&Ty::Str, &Ty::Str);
pub const NULL_REF: &str = "OpaqueRef:NULL";
pub const EPOCH: &str = "19700101T00:00:00Z";

pub const TASK_STATUS: &[&str] = &["pending", "success", "failure", "cancelling", "cancelled"];
pub const VDI_TYPES: &[&str] = &[
    "system",
    "user",
    "ephemeral",
    "suspend",
    "crashdump",
    "ha_statefile",
    "metadata",
    "redo_log",
    "rrd",
    "pvs_cache",
    "cbt_metadata",
];
pub const VBD_MODES: &[&str] = &["RO", "RW"];
pub const VBD_TYPES: &[&str] = &["CD", "Disk", "Floppy"];
pub const POWER_STATES: &[&str] = &["Halted", "Paused", "Running", "Suspended"];
