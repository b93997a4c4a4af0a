//! The relationship's display name in Microsoft: the operator's idempotency key.
//!
//! When `spec.displayName` is empty the name is derived from the object's name and uid, so it is
//! the same on every reconcile and after a restart, differs between two objects of the same name
//! (delete and re-create gives a new uid), and fits Microsoft's 50-character limit.

/// Microsoft's limit on relationship display names.
pub const MAX_DISPLAY_NAME: usize = 50;

/// `spec.displayName`, or `<name, shortened>-<first 8 of uid>`.
pub fn display_name(spec_display_name: Option<&str>, name: &str, uid: &str) -> String {
    if let Some(given) = spec_display_name.filter(|s| !s.is_empty()) {
        return given.to_string();
    }
    let suffix: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let room = MAX_DISPLAY_NAME - suffix.len() - 1;
    let prefix: String = name.chars().take(room).collect();
    format!("{}-{suffix}", prefix.trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_win() {
        assert_eq!(display_name(Some("acme-2026"), "x", "uid"), "acme-2026");
        assert_eq!(display_name(Some(""), "x", "0123456789"), "x-01234567");
    }

    #[test]
    fn derived_names_are_stable_unique_per_uid_and_short_enough() {
        let long = "a".repeat(63);
        let one = display_name(None, &long, "5d027261-d21f-4aa9-b7db-7fa1f56fb163");
        assert_eq!(
            one,
            display_name(None, &long, "5d027261-d21f-4aa9-b7db-7fa1f56fb163")
        );
        assert_eq!(one.len(), MAX_DISPLAY_NAME);
        assert!(one.ends_with("-5d027261"));
        assert_ne!(
            one,
            display_name(None, &long, "6e027261-d21f-4aa9-b7db-7fa1f56fb163")
        );
        assert_eq!(
            display_name(None, "contoso", "5d027261-d21f"),
            "contoso-5d027261"
        );
    }
}
