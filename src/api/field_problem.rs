//! [`FieldProblem`]: one problem in one object, the currency of the domain rules (`rules`,
//! `consent_rules`). Its own module so that both rule modules can name it without importing
//! each other.

/// One problem in one object, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted field path, e.g. `spec.roles[2]` (empty for the whole object).
    pub field: String,
    /// What is wrong and which rule says so.
    pub message: String,
}

impl FieldProblem {
    /// A problem on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}
