//! The complete router: every endpoint module's `routes()`, the fallback, and the middleware
//! that injects faults and logs Microsoft-API calls (`http.rs`). Mounting happens only here, so
//! endpoint modules never import each other's routes.

use super::context::Shared;
use super::http::{fallback, observe};
use super::{
    applications, apps, batch, control, control_webhooks, directory, gdap, gdap_assign,
    gdap_requests, groups, me, partner_center, pc_customers, signin, token, users, webhooks,
};
use axum::Router;
use axum::middleware;
use std::sync::Arc;

/// Builds the complete router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(token::routes())
        .merge(signin::routes())
        .merge(gdap::routes())
        .merge(gdap_requests::routes())
        .merge(gdap_assign::routes())
        .merge(directory::routes())
        .merge(apps::routes())
        .merge(users::routes())
        .merge(batch::routes(router))
        .merge(me::routes())
        .merge(groups::routes())
        .merge(applications::routes())
        .merge(partner_center::routes())
        .merge(pc_customers::routes())
        .merge(webhooks::routes())
        .merge(control::routes())
        .merge(control_webhooks::routes())
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}
