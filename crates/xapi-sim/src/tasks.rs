//! Task life cycle as XAPI runs it: pending, then success (with the result as
//! an XML-RPC value string), failure (with error_info) or cancelled.

use serde_json::{json, Value as Json};

use crate::clock;
use crate::db::classes::class;
use crate::db::{Db, Record};
use crate::error::ApiError;
use crate::rpc::xmlrpc;
use crate::value::Value;

pub const CLASS: &str = "task";

/// Creates a pending task owned by `session`.
pub fn create(db: &mut Db, label: &str, description: &str, session: &str) -> String {
    let host = db.refs("host").into_iter().next().unwrap_or_default();
    let mut fields = Record::new();
    fields.insert("name_label".into(), json!(label));
    fields.insert("name_description".into(), json!(description));
    fields.insert("created".into(), json!(clock::now()));
    fields.insert("session".into(), json!(session));
    fields.insert("resident_on".into(), json!(host));
    match class(CLASS) {
        Some(c) => db.create(c, fields),
        None => String::new(),
    }
}

pub fn status(db: &Db, task: &str) -> String {
    db.str_of(CLASS, task, "status").to_owned()
}

pub fn is_pending(db: &Db, task: &str) -> bool {
    status(db, task) == "pending"
}

/// Whether someone asked to cancel the task.
pub fn is_cancelling(db: &Db, task: &str) -> bool {
    status(db, task) == "cancelling"
}

fn finish(db: &mut Db, task: &str, status: &str, result: &str, error_info: Vec<String>) {
    // A task whose destroy was asked while it ran goes when it ends.
    let destroy_asked = db
        .get(CLASS, task)
        .and_then(|t| t.get("current_operations"))
        .and_then(|ops| ops.get("task"))
        .and_then(Json::as_str)
        == Some("destroy");
    if destroy_asked {
        db.destroy(CLASS, task);
        return;
    }
    if let Some(t) = db.get_mut(CLASS, task) {
        t.insert("status".into(), json!(status));
        t.insert("finished".into(), json!(clock::now()));
        t.insert("result".into(), json!(result));
        t.insert("error_info".into(), json!(error_info));
        t.insert(
            "current_operations".into(),
            Json::Object(Default::default()),
        );
        if status == "success" {
            t.insert("progress".into(), json!(1.0));
        }
    }
}

/// Success; `result` is the value the task produced (a ref, or nothing).
pub fn complete(db: &mut Db, task: &str, result: Option<&Value>) {
    let rendered = result.map(xmlrpc::value_xml).unwrap_or_default();
    finish(db, task, "success", &rendered, Vec::new());
}

pub fn fail(db: &mut Db, task: &str, error: &ApiError) {
    finish(db, task, "failure", "", error.description());
}

pub fn cancelled(db: &mut Db, task: &str) {
    finish(
        db,
        task,
        "cancelled",
        "",
        vec!["TASK_CANCELLED".into(), task.to_owned()],
    );
}

/// Progress between 0 and 1; not worth a save of its own.
pub fn set_progress(db: &mut Db, task: &str, progress: f64) {
    if let Some(t) = db.get_mut_quiet(CLASS, task) {
        t.insert("progress".into(), json!(progress.clamp(0.0, 1.0)));
    }
}

/// Records a detail XAPI keeps in its logs, where tests can read it.
pub fn note(db: &mut Db, task: &str, detail: &str) {
    if let Some(t) = db.get_mut(CLASS, task) {
        if let Some(Json::Object(oc)) = t.get_mut("other_config") {
            oc.insert("xapi-sim:detail".into(), json!(detail));
        }
    }
}
