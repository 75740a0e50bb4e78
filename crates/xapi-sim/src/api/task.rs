//! Tasks made by clients (`task.create`) and their cancellation: a running
//! transfer sees `cancelling` and finishes the task as `cancelled`.

use serde_json::{json, Value as Json};

use super::args::Args;
use super::{Ctx, Handler};
use crate::db::convert::from_rpc;
use crate::db::schema::{Ty, SS, TASK_STATUS};
use crate::error::ApiError;
use crate::tasks;
use crate::value::Value;

pub fn method(op: &str) -> Option<(usize, Handler)> {
    Some(match op {
        "create" => (2, create),
        "cancel" => (1, cancel),
        "destroy" => (1, destroy),
        "set_status" => (2, set_status),
        "set_progress" => (2, set_progress),
        "set_result" => (2, set_result),
        "set_error_info" => (2, set_error_info),
        _ => return None,
    })
}

fn create(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let label = args.str(0, "label")?;
    let description = args.str(1, "description")?;
    Ok(Value::Str(tasks::create(
        ctx.db,
        label,
        description,
        &ctx.session,
    )))
}

fn done(status: &str) -> bool {
    matches!(status, "success" | "failure" | "cancelled")
}

fn cancel(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let task = args.reference(ctx.db, 0, tasks::CLASS)?;
    if tasks::is_pending(ctx.db, &task) {
        let caller = ctx.session.clone();
        if let Some(t) = ctx.db.get_mut(tasks::CLASS, &task) {
            t.insert("status".into(), json!("cancelling"));
            t.insert("current_operations".into(), json!({ caller: "cancel" }));
        }
    }
    Ok(Value::Nil)
}

fn destroy(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let task = args.reference(ctx.db, 0, tasks::CLASS)?;
    if done(&tasks::status(ctx.db, &task)) {
        ctx.db.destroy(tasks::CLASS, &task);
    } else if let Some(Json::Object(ops)) = ctx
        .db
        .get_mut(tasks::CLASS, &task)
        .and_then(|t| t.get_mut("current_operations"))
    {
        // XAPI destroys it when the operation running it ends.
        ops.insert("task".into(), json!("destroy"));
    }
    Ok(Value::Nil)
}

fn set(ctx: &mut Ctx, args: &Args, field: &str, ty: Ty) -> Result<Value, ApiError> {
    let task = args.reference(ctx.db, 0, tasks::CLASS)?;
    let value = from_rpc(field, ty, args.at(1))?;
    if let Some(t) = ctx.db.get_mut(tasks::CLASS, &task) {
        t.insert(field.to_owned(), value);
    }
    Ok(Value::Nil)
}

fn set_status(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    set(ctx, args, "status", Ty::Enum(TASK_STATUS))
}

fn set_progress(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    set(ctx, args, "progress", Ty::Float)
}

fn set_result(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    set(ctx, args, "result", Ty::Str)
}

fn set_error_info(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    set(ctx, args, "error_info", SS)
}
