//! Tasks: create, watch, cancel, destroy, and report progress on them.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Instant;

use serde_json::json;

use crate::error::{codes, Error, Result, XapiError};
use crate::session::Session;
use crate::types::{TaskRecord, TaskRef, TaskStatus};

impl Session {
    /// A new task, shown in XenCenter / Xen Orchestra with this label.
    pub fn task_create(&self, label: &str, description: &str) -> Result<TaskRef> {
        self.call_as("task.create", &[json!(label), json!(description)])
    }

    pub fn task_record(&self, task: &TaskRef) -> Result<TaskRecord> {
        self.call_as("task.get_record", &[json!(task)])
    }

    /// 0.0 to 1.0.
    pub fn task_progress(&self, task: &TaskRef) -> Result<f64> {
        self.call_as("task.get_progress", &[json!(task)])
    }

    pub fn task_status(&self, task: &TaskRef) -> Result<TaskStatus> {
        self.call_as("task.get_status", &[json!(task)])
    }

    /// The result text (an XML-RPC value string, often `<value>OpaqueRef:...</value>`).
    pub fn task_result(&self, task: &TaskRef) -> Result<String> {
        self.call_as("task.get_result", &[json!(task)])
    }

    /// `[CODE, params...]` of a failed task.
    pub fn task_error_info(&self, task: &TaskRef) -> Result<Vec<String>> {
        self.call_as("task.get_error_info", &[json!(task)])
    }

    pub fn task_cancel(&self, task: &TaskRef) -> Result<()> {
        self.call_void("task.cancel", &[json!(task)])
    }

    pub fn task_destroy(&self, task: &TaskRef) -> Result<()> {
        self.call_void("task.destroy", &[json!(task)])
    }

    /// Sets a task's progress (0.0 to 1.0) so XenCenter / Xen Orchestra show it.
    /// `task.set_progress` exists in current XAPI (xapi_task.ml); older hosts answer
    /// MESSAGE_METHOD_UNKNOWN: then this returns `Ok(false)` and stops asking.
    pub fn task_set_progress(&self, task: &TaskRef, progress: f64) -> Result<bool> {
        if self.set_progress_missing().load(Ordering::Relaxed) {
            return Ok(false);
        }
        let value = progress.clamp(0.0, 1.0);
        match self.call_void("task.set_progress", &[json!(task), json!(value)]) {
            Ok(()) => Ok(true),
            Err(e) if e.is_code(codes::MESSAGE_METHOD_UNKNOWN) => {
                tracing::info!(host = %self.host(), "this XAPI has no task.set_progress; progress shows on the console only");
                self.set_progress_missing().store(true, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Polls until the task has finished, or until `deadline`; `None` when it passed.
    pub fn task_wait_until(
        &self,
        task: &TaskRef,
        deadline: Option<Instant>,
    ) -> Result<Option<TaskRecord>> {
        loop {
            let record = self.task_record(task)?;
            if record.status.is_finished() {
                return Ok(Some(record));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            thread::sleep(self.options().poll_interval);
        }
    }

    /// Waits for the task to finish and gives its result, or its error as a typed error.
    pub fn task_wait(&self, task: &TaskRef, what: &str) -> Result<String> {
        let record = self.task_wait_until(task, None)?.unwrap_or_default();
        match record.status {
            TaskStatus::Success => Ok(record.result),
            TaskStatus::Cancelled => Err(Error::TaskCancelled {
                host: self.host(),
                what: what.to_string(),
            }),
            _ => Err(Error::TaskFailed {
                host: self.host(),
                what: what.to_string(),
                error: XapiError::from_list(&record.error_info),
            }),
        }
    }
}
