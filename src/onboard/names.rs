//! Kubernetes names for exported objects and folders: readable, valid, and the same on every run.
//!
//! Contract: an object's name is the relationship's display name made into a DNS label
//! (lower-case letters, digits and `-`, at most 63 characters) followed by `-` and the first
//! eight hex digits of the relationship id — unique even when two display names slug alike, and
//! unchanged as long as the relationship exists (its id never changes; its display name cannot
//! change once locked). A customer's folder is its name made into a DNS label, `-`, and the
//! first eight hex digits of its tenant id.

/// The longest DNS label.
pub const MAX_LABEL: usize = 63;

/// `text` as a DNS label of at most `max` characters: lower case, runs of anything but `a-z` and
/// `0-9` become one `-`, no `-` at either end. Empty when nothing usable is left.
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_end_matches('-').to_string()
}

/// The first eight hex digits of an id (GUID-like): the stable, unique suffix.
pub fn short_id(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn with_suffix(readable: &str, fallback: &str, id: &str) -> String {
    let suffix = short_id(id);
    let room = MAX_LABEL - suffix.len() - 1;
    let mut base = slug(readable, room);
    if base.is_empty() {
        base = fallback.to_string();
    }
    format!("{base}-{suffix}")
}

/// The object name of the relationship with this display name and id.
pub fn object_name(display_name: &str, relationship_id: &str) -> String {
    with_suffix(display_name, "relationship", relationship_id)
}

/// The folder of a customer (its name when known).
pub fn customer_folder(customer_name: Option<&str>, tenant_id: &str) -> String {
    with_suffix(customer_name.unwrap_or_default(), "customer", tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= MAX_LABEL
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn names_are_dns_labels_from_any_display_name() {
        let id = "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836";
        let cases = [
            (
                "Contoso Ltd - Helpdesk (2025)",
                "contoso-ltd-helpdesk-2025-5d027261",
            ),
            ("MS_Default_GDAP__ÄÖÜ", "ms-default-gdap-5d027261"),
            ("___", "relationship-5d027261"),
            ("Ünïcödé", "n-c-d-5d027261"),
        ];
        for (display, expected) in cases {
            let name = object_name(display, id);
            assert_eq!(name, expected, "{display}");
            assert!(is_dns_label(&name), "{name}");
        }
        let long = object_name(&"x".repeat(80), id);
        assert!(is_dns_label(&long) && long.len() == MAX_LABEL, "{long}");
        let cut_at_dash = object_name(&format!("{}-{}", "a".repeat(53), "b"), id);
        assert!(is_dns_label(&cut_at_dash), "{cut_at_dash}");
    }

    #[test]
    fn names_alike_after_slugging_stay_unique_and_stable() {
        let a = object_name("Contoso_A", "aaaaaaaa-0000-4000-8000-000000000001-p");
        let b = object_name("contoso a", "bbbbbbbb-0000-4000-8000-000000000001-p");
        assert_ne!(a, b);
        assert_eq!(
            a,
            object_name("Contoso_A", "aaaaaaaa-0000-4000-8000-000000000001-p")
        );
    }

    #[test]
    fn folders_name_the_customer_and_fall_back_to_the_tenant() {
        let tid = "11111111-2222-3333-4444-555555555555";
        assert_eq!(
            customer_folder(Some("Contoso Ltd"), tid),
            "contoso-ltd-11111111"
        );
        assert_eq!(customer_folder(None, tid), "customer-11111111");
        assert!(is_dns_label(&customer_folder(Some(&"Ω".repeat(80)), tid)));
    }
}
