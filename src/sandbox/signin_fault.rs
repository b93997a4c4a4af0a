//! Entra's errors of the sign-in flows before they are rendered (as a JSON answer, an error
//! page or a redirect), and the required-parameter check that raises most of them.

use super::entra::{EntraError, entra_error};
use std::collections::HashMap;

/// An Entra error before it is rendered: as a JSON answer, an error page or a redirect.
pub(super) struct Fault {
    pub(super) error: &'static str,
    pub(super) code: u32,
    pub(super) text: String,
}

impl Fault {
    pub(super) fn new(error: &'static str, code: u32, text: impl Into<String>) -> Fault {
        Fault {
            error,
            code,
            text: text.into(),
        }
    }

    /// The token-endpoint style answer (HTTP 400).
    pub(super) fn entra(self) -> EntraError {
        entra_error(400, self.error, self.code, &self.text)
    }
}

/// Entra's AADSTS700016 for a client id that no app has (`unauthorized_client`).
pub fn unknown_client(client_id: &str, tenant: &str) -> EntraError {
    unknown_client_fault(client_id, tenant).entra()
}

pub(super) fn unknown_client_fault(client_id: &str, tenant: &str) -> Fault {
    Fault::new(
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
        ),
    )
}

pub(super) fn tenant_not_found(tenant: &str) -> Fault {
    Fault::new(
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

pub(super) fn missing(name: &str) -> Fault {
    Fault::new(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

pub(super) fn unknown_resource(resource: &str, tid: &str) -> Fault {
    Fault::new(
        "invalid_resource",
        500011,
        format!("The resource principal named {resource} was not found in the tenant named {tid}."),
    )
}

pub(super) fn non_empty<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}
