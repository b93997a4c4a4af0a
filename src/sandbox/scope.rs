//! The resource a requested `scope` is for (Microsoft Graph or Partner Center), shared by the
//! token endpoint and the sign-in endpoints.

use super::defaults::{apps, resources};

/// The resource a token request's scopes name: (audience URI, resource appId).
pub(super) fn resource_of(scope: &str) -> Option<Result<(&'static str, &'static str), String>> {
    let first = scope.split(' ').map(str::trim).find(|s| {
        !s.is_empty() && !matches!(*s, "openid" | "profile" | "offline_access" | "email")
    })?;
    let lower = first.to_ascii_lowercase();
    let graph = apps::MICROSOFT_GRAPH;
    let pc = apps::PARTNER_CENTER;
    Some(
        if lower.starts_with("https://graph.microsoft.com/") || lower.starts_with(graph) {
            Ok((resources::GRAPH, graph))
        } else if lower.starts_with("https://api.partnercenter.microsoft.com/")
            || lower.starts_with(pc)
        {
            Ok((resources::PARTNER_CENTER, pc))
        } else {
            Err(first.to_string())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_map_to_resources() {
        assert_eq!(
            resource_of("https://graph.microsoft.com/.default offline_access")
                .unwrap()
                .unwrap()
                .0,
            resources::GRAPH
        );
        assert_eq!(
            resource_of("openid https://api.partnercenter.microsoft.com/user_impersonation")
                .unwrap()
                .unwrap()
                .0,
            resources::PARTNER_CENTER
        );
        assert!(
            resource_of("https://evil.example/.default")
                .unwrap()
                .is_err()
        );
        assert!(resource_of("openid profile").is_none());
    }
}
