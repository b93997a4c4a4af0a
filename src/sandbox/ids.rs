//! Deterministic ids: the fixture, the catalog and the generated estate name their objects so
//! that every start yields the same ids.

/// A deterministic object id for fixture objects (UUID v5 of a name).
pub fn derived_id(name: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}
