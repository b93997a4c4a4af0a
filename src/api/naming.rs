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

/// The display name of the object's relationship of `generation`: the base name for the first
/// (0), and `<base, shortened>-r<generation>` for each successor — deterministic, so a successor is
/// found again after any crash, and never two are created for one generation.
pub fn generation_name(base: &str, generation: u32) -> String {
    if generation == 0 {
        return base.to_string();
    }
    let suffix = format!("-r{generation}");
    let room = MAX_DISPLAY_NAME.saturating_sub(suffix.len());
    let prefix: String = base.chars().take(room).collect();
    format!("{}{suffix}", prefix.trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_names_carry_the_generation_and_fit_fifty_characters() {
        assert_eq!(generation_name("contoso-5d027261", 0), "contoso-5d027261");
        assert_eq!(
            generation_name("contoso-5d027261", 1),
            "contoso-5d027261-r1"
        );
        let long = "a".repeat(50);
        let name = generation_name(&long, 12);
        assert_eq!(name.len(), MAX_DISPLAY_NAME);
        assert!(name.ends_with("-r12"));
        assert_ne!(generation_name(&long, 1), generation_name(&long, 2));
    }

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
