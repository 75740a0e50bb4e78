//! Errors: `ApiError` is an XAPI failure (code and parameters) as clients see
//! it; `Error` is what stops the simulator itself from starting.

use std::path::PathBuf;

/// An XAPI error: a code such as `HANDLE_INVALID` and its string parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub params: Vec<String>,
}

impl ApiError {
    pub fn new(code: &str, params: &[&str]) -> Self {
        Self {
            code: code.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    pub fn with(code: &str, params: Vec<String>) -> Self {
        Self {
            code: code.to_owned(),
            params,
        }
    }

    pub fn handle_invalid(class: &str, reference: &str) -> Self {
        Self::new("HANDLE_INVALID", &[class, reference])
    }

    pub fn uuid_invalid(class: &str, uuid: &str) -> Self {
        Self::new("UUID_INVALID", &[class, uuid])
    }

    pub fn session_invalid(reference: &str) -> Self {
        Self::new("SESSION_INVALID", &[reference])
    }

    pub fn method_unknown(method: &str) -> Self {
        Self::new("MESSAGE_METHOD_UNKNOWN", &[method])
    }

    /// XAPI counts parameters without the session, and `expected` is the
    /// number of parameters that have no default.
    pub fn count_mismatch(method: &str, expected: usize, received: usize) -> Self {
        Self::with(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            vec![
                method.to_owned(),
                expected.to_string(),
                received.to_string(),
            ],
        )
    }

    pub fn invalid_value(what: &str, value: &str) -> Self {
        Self::new("INVALID_VALUE", &[what, value])
    }

    pub fn field_type_error(field: &str) -> Self {
        Self::new("FIELD_TYPE_ERROR", &[field])
    }

    pub fn internal(message: &str) -> Self {
        Self::new("INTERNAL_ERROR", &[message])
    }

    /// What vhd-tool failures become in XAPI: the detail never reaches the task.
    pub fn vdi_io_error() -> Self {
        Self::new("VDI_IO_ERROR", &["Device I/O errors"])
    }

    /// The code followed by the parameters, as XML-RPC `ErrorDescription` and
    /// `task.error_info` carry them.
    pub fn description(&self) -> Vec<String> {
        let mut all = Vec::with_capacity(self.params.len() + 1);
        all.push(self.code.clone());
        all.extend(self.params.iter().cloned());
        all
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.code, self.params)
    }
}

impl std::error::Error for ApiError {}

/// Why the simulator could not start or save its state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The saved object database cannot be read; remove it to start afresh.
    #[error(
        "cannot read the saved state {path}: {reason} (remove the state directory to start afresh)"
    )]
    State { path: PathBuf, reason: String },
    /// Making or loading the TLS certificate failed.
    #[error(
        "TLS certificate: {0} (remove the tls directory in the state directory to make a new one)"
    )]
    Tls(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
