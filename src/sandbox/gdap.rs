//! Placeholder: filled in by the next commits.

use super::context::Shared;
use axum::Router;
use std::sync::Arc;

/// Routes of this module.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
