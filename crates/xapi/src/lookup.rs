//! Finding an object by UUID or by name label.

use serde_json::json;

use crate::error::{codes, Error, Result};
use crate::session::Session;

/// True for the 8-4-4-4-12 hex form of a UUID.
pub fn looks_like_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Session {
    /// The ref of the `class` object whose UUID or name label is `key`. A name must be
    /// unique; a UUID-shaped key that matches no UUID is tried as a name.
    pub(crate) fn lookup(&self, class: &'static str, key: &str) -> Result<String> {
        if looks_like_uuid(key) {
            match self.call_as::<String>(&format!("{class}.get_by_uuid"), &[json!(key)]) {
                Ok(found) => return Ok(found),
                Err(e) if e.is_code(codes::UUID_INVALID) || e.is_code(codes::HANDLE_INVALID) => {}
                Err(e) => return Err(e),
            }
        }
        let found: Vec<String> =
            self.call_as(&format!("{class}.get_by_name_label"), &[json!(key)])?;
        match found.len() {
            0 => Err(Error::NotFound {
                host: self.host(),
                class,
                key: key.to_string(),
            }),
            1 => Ok(found.into_iter().next().unwrap_or_default()),
            count => Err(Error::Ambiguous {
                host: self.host(),
                class,
                key: key.to_string(),
                count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        assert!(looks_like_uuid("0b5d8b1e-0c1f-4a7e-9d0e-1234567890ab"));
        assert!(looks_like_uuid("0B5D8B1E-0C1F-4A7E-9D0E-1234567890AB"));
        for bad in [
            "",
            "Local storage",
            "0b5d8b1e-0c1f-4a7e-9d0e-1234567890a",
            "0b5d8b1e0c1f4a7e9d0e1234567890ab",
        ] {
            assert!(!looks_like_uuid(bad), "{bad}");
        }
    }
}
