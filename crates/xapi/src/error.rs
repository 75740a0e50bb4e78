//! Errors: XAPI's own (code + parameters) and everything around them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tls::Fingerprint;

/// XAPI error codes the client treats specially.
pub mod codes {
    pub const SESSION_AUTHENTICATION_FAILED: &str = "SESSION_AUTHENTICATION_FAILED";
    pub const HOST_IS_SLAVE: &str = "HOST_IS_SLAVE";
    pub const SESSION_INVALID: &str = "SESSION_INVALID";
    pub const SR_FULL: &str = "SR_FULL";
    pub const HANDLE_INVALID: &str = "HANDLE_INVALID";
    pub const UUID_INVALID: &str = "UUID_INVALID";
    pub const VDI_IN_USE: &str = "VDI_IN_USE";
    pub const VDI_READONLY: &str = "VDI_READONLY";
    pub const VDI_IO_ERROR: &str = "VDI_IO_ERROR";
    pub const INVALID_VALUE: &str = "INVALID_VALUE";
    pub const MAC_INVALID: &str = "MAC_INVALID";
    pub const INVALID_DEVICE: &str = "INVALID_DEVICE";
    pub const DEVICE_ALREADY_EXISTS: &str = "DEVICE_ALREADY_EXISTS";
    pub const MESSAGE_PARAMETER_COUNT_MISMATCH: &str = "MESSAGE_PARAMETER_COUNT_MISMATCH";
    pub const MESSAGE_METHOD_UNKNOWN: &str = "MESSAGE_METHOD_UNKNOWN";
    pub const RBAC_PERMISSION_DENIED: &str = "RBAC_PERMISSION_DENIED";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const TASK_CANCELLED: &str = "TASK_CANCELLED";
}

/// An error as XAPI reports it: a code and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XapiError {
    pub code: String,
    pub params: Vec<String>,
}

impl XapiError {
    pub fn new(code: impl Into<String>, params: Vec<String>) -> Self {
        XapiError {
            code: code.into(),
            params,
        }
    }

    /// Builds one from XAPI's `[CODE, param...]` list (task error_info, JSON-RPC 1.0).
    pub fn from_list(list: &[String]) -> Self {
        match list.split_first() {
            Some((code, params)) => XapiError::new(code.clone(), params.to_vec()),
            None => XapiError::new(
                codes::INTERNAL_ERROR,
                vec!["empty error description".into()],
            ),
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }

    pub fn param(&self, index: usize) -> Option<&str> {
        self.params.get(index).map(String::as_str)
    }

    /// What happened, in words, for the codes we know.
    pub fn explanation(&self) -> Option<String> {
        let p = |i| self.param(i).unwrap_or("?");
        Some(match self.code.as_str() {
            codes::SESSION_AUTHENTICATION_FAILED => "wrong user name or password".to_string(),
            codes::HOST_IS_SLAVE => {
                format!("this host is a pool member; the pool master is {}", p(0))
            }
            codes::SESSION_INVALID => {
                "the session is no longer valid (expired or logged out)".into()
            }
            codes::SR_FULL => format!(
                "the storage repository is full: {} bytes requested, {} bytes available",
                p(0),
                p(1)
            ),
            codes::HANDLE_INVALID => {
                format!("the {} object {} does not exist (any more)", p(0), p(1))
            }
            codes::UUID_INVALID => format!("no {} has UUID {}", p(0), p(1)),
            codes::VDI_IN_USE => "the virtual disk is in use".into(),
            codes::VDI_READONLY => "the virtual disk is read-only".into(),
            codes::VDI_IO_ERROR => format!(
                "the host failed to read or write the virtual disk ({})",
                p(0)
            ),
            codes::INVALID_VALUE => format!("invalid value {:?} for {}", p(1), p(0)),
            codes::MAC_INVALID => format!("invalid MAC address {}", p(0)),
            codes::INVALID_DEVICE => format!("invalid device {}", p(0)),
            codes::DEVICE_ALREADY_EXISTS => format!("device {} already exists", p(0)),
            codes::MESSAGE_PARAMETER_COUNT_MISMATCH => {
                format!("call {} expects {} parameters, got {}", p(0), p(1), p(2))
            }
            codes::MESSAGE_METHOD_UNKNOWN => format!("this host does not know the call {}", p(0)),
            codes::RBAC_PERMISSION_DENIED => format!("permission denied for {}", p(0)),
            codes::TASK_CANCELLED => "the task was cancelled".into(),
            _ => return None,
        })
    }

    /// The next step for the operator, for the codes where there is one.
    pub fn next_step(&self) -> Option<&'static str> {
        Some(match self.code.as_str() {
            codes::SESSION_AUTHENTICATION_FAILED => {
                "check the user name and password of the XAPI account (root or an AD user with a VM role)"
            }
            codes::HOST_IS_SLAVE => "connect to the pool master instead",
            codes::SESSION_INVALID => {
                "the session expired again right after a new login; check the host's clock and that nobody logs out all sessions"
            }
            codes::SR_FULL => "free space on the SR, or choose another SR",
            codes::HANDLE_INVALID => "someone deleted the object while xenlift worked; run the conversion again",
            codes::VDI_IO_ERROR => {
                "check the SR's health on the host; on SRs that need zeros written (thick LVM) send chunked raw instead of VHD"
            }
            codes::VDI_IN_USE => "detach the disk from running VMs or wait for other operations on it",
            codes::MAC_INVALID => "give a MAC address as six hex pairs (aa:bb:cc:dd:ee:ff)",
            codes::MESSAGE_METHOD_UNKNOWN | codes::MESSAGE_PARAMETER_COUNT_MISMATCH => {
                "the host's XAPI version differs from what xenlift expects; update the host or report this"
            }
            codes::RBAC_PERMISSION_DENIED => {
                "use an account with the pool-admin or vm-admin role"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for XapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.params.is_empty() {
            write!(f, " [{}]", self.params.join(", "))?;
        }
        if let Some(what) = self.explanation() {
            write!(f, ": {what}")?;
        }
        if let Some(next) = self.next_step() {
            write!(f, "; {next}")?;
        }
        Ok(())
    }
}

impl std::error::Error for XapiError {}

/// Everything that can go wrong talking to XAPI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// XAPI refused a call.
    #[error("XAPI call {call} on {host} failed: {error}")]
    Api {
        host: String,
        call: String,
        error: XapiError,
    },

    /// The network or HTTP layer failed (no reply, reset, DNS, timeout).
    #[error("{what} on {host} failed: {detail}")]
    Transport {
        host: String,
        what: String,
        detail: String,
    },

    /// The host has no JSON-RPC endpoint.
    #[error(
        "{host} does not answer JSON-RPC on /jsonrpc (HTTP {status}, content type {content_type:?}): \
         its XAPI is too old for xenlift; upgrade the host to a release with JSON-RPC"
    )]
    NoJsonRpc {
        host: String,
        status: u16,
        content_type: String,
    },

    /// A reply that does not follow the protocol.
    #[error("unexpected reply to {what} from {host}: {detail}")]
    Protocol {
        host: String,
        what: String,
        detail: String,
    },

    /// `http://` without the explicit option.
    #[error(
        "refusing plain http:// to {host}: the password and session id would travel in clear; \
         use https://, or allow plaintext explicitly if this network is trusted"
    )]
    PlaintextRefused { host: String },

    /// The server's certificate is not the pinned one.
    #[error(
        "the certificate of {host} has SHA-256 fingerprint {seen}, which is not the expected {expected}; \
         nothing was sent. If the host's certificate was renewed, check it on the host console \
         (xe host-param-get ... or the Certificate list in XenCenter) and pin the new fingerprint"
    )]
    FingerprintMismatch {
        host: String,
        seen: Fingerprint,
        expected: String,
    },

    /// A TLS failure other than a pin mismatch.
    #[error("TLS with {host} failed: {detail}")]
    Tls { host: String, detail: String },

    /// A fingerprint string that is not 32 bytes of hex.
    #[error(
        "invalid SHA-256 fingerprint {0:?}: expected 64 hex digits, colons allowed (AB:CD:...)"
    )]
    BadFingerprint(String),

    /// The CA bundle cannot be used.
    #[error("CA bundle {path}: {detail}")]
    CaBundle { path: String, detail: String },

    /// A target URL we cannot use.
    #[error("invalid XAPI address {url:?}: {detail}")]
    BadUrl { url: String, detail: String },

    /// An HTTP transfer got a status it cannot go on with.
    #[error("{what} on {host} got HTTP {status}: {detail}")]
    Http {
        host: String,
        what: String,
        status: u16,
        detail: String,
    },

    /// The connection broke while the body was being sent.
    #[error(
        "{what} to {host} broke after {bytes_sent} of {total} bytes were sent: {detail}{}",
        task_error.as_ref().map(|e| format!("; the host's task says {e}")).unwrap_or_default()
    )]
    TransferInterrupted {
        host: String,
        what: String,
        bytes_sent: u64,
        total: u64,
        detail: String,
        task_error: Option<Box<XapiError>>,
    },

    /// A task ended in failure.
    #[error("{what} on {host} failed: {error}")]
    TaskFailed {
        host: String,
        what: String,
        error: XapiError,
    },

    /// A task was cancelled (by an operator or another client).
    #[error("{what} on {host} was cancelled on the server")]
    TaskCancelled { host: String, what: String },

    /// An import's task failed after the HTTP 200 (errors after the 200 show only there).
    #[error("{what} on {host} failed after {bytes_sent} of {total} bytes were sent: {error}")]
    ImportFailed {
        host: String,
        what: String,
        bytes_sent: u64,
        total: u64,
        error: XapiError,
    },

    /// An import's task was cancelled on the server while the disk was streaming.
    #[error(
        "{what} on {host} was cancelled on the server after {bytes_sent} of {total} bytes were sent; \
         run the conversion again if that was not intended"
    )]
    ImportCancelled {
        host: String,
        what: String,
        bytes_sent: u64,
        total: u64,
    },

    /// A lookup by name or UUID found nothing.
    #[error("no {class} named or with UUID {key:?} on {host}")]
    NotFound {
        host: String,
        class: &'static str,
        key: String,
    },

    /// A lookup by name found several objects.
    #[error("{count} {class} objects are named {key:?} on {host}: give the UUID instead")]
    Ambiguous {
        host: String,
        class: &'static str,
        key: String,
        count: usize,
    },
}

impl Error {
    /// The XAPI error inside, if the failure came from XAPI.
    pub fn xapi(&self) -> Option<&XapiError> {
        match self {
            Error::Api { error, .. }
            | Error::TaskFailed { error, .. }
            | Error::ImportFailed { error, .. } => Some(error),
            Error::TransferInterrupted { task_error, .. } => task_error.as_deref(),
            _ => None,
        }
    }

    /// True when the failure carries this XAPI error code.
    pub fn is_code(&self, code: &str) -> bool {
        self.xapi().is_some_and(|e| e.is(code))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of an error and all its sources, joined by ": ".
pub(crate) fn chain_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_code_params_explanation_and_next_step() {
        let e = XapiError::new(codes::SR_FULL, vec!["100".into(), "50".into()]);
        let text = e.to_string();
        assert!(text.starts_with("SR_FULL [100, 50]"), "{text}");
        assert!(
            text.contains("100 bytes requested, 50 bytes available"),
            "{text}"
        );
        assert!(text.contains("choose another SR"), "{text}");
    }

    #[test]
    fn unknown_codes_show_code_and_params_only() {
        let e = XapiError::new("SOMETHING_NEW", vec!["a".into()]);
        assert_eq!(e.to_string(), "SOMETHING_NEW [a]");
    }

    #[test]
    fn from_list_splits_code_and_params() {
        let e = XapiError::from_list(&["VDI_IO_ERROR".into(), "Device I/O errors".into()]);
        assert!(e.is(codes::VDI_IO_ERROR));
        assert_eq!(e.param(0), Some("Device I/O errors"));
        assert!(XapiError::from_list(&[]).is(codes::INTERNAL_ERROR));
    }

    #[test]
    fn every_common_code_has_a_next_step() {
        for code in [
            codes::SESSION_AUTHENTICATION_FAILED,
            codes::HOST_IS_SLAVE,
            codes::SESSION_INVALID,
            codes::SR_FULL,
            codes::HANDLE_INVALID,
            codes::VDI_IO_ERROR,
            codes::RBAC_PERMISSION_DENIED,
        ] {
            let e = XapiError::new(code, vec![]);
            assert!(e.next_step().is_some(), "{code}");
            assert!(e.explanation().is_some(), "{code}");
        }
    }
}
