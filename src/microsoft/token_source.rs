//! What the HTTP transport needs of a token: [`TokenSource`], the sealed trait the two token
//! types of `token` implement, and [`TokenKind`]. Its own module so that `transport` (which
//! sends requests with a token) and `token` (which fetches tokens through the transport) need
//! not import each other.

use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::Result;
use crate::microsoft::secret::Secret;
use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;

/// Which grant a token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Client credentials (app-only).
    App,
    /// Refresh-token grant as the partner's GDAP user (app + user).
    Delegated,
}

/// Seals [`TokenSource`]: the trait is nameable only inside `microsoft`, so no one else can
/// implement it.
pub(super) mod sealed {
    pub trait Sealed {}
}

/// Anything that yields bearer tokens for one tenant and audience. Sealed: only
/// [`AppToken`](crate::microsoft::AppToken) and [`DelegatedToken`](crate::microsoft::DelegatedToken)
/// implement it. Read methods accept `&dyn TokenSource`; write methods accept
/// only `&DelegatedToken`.
#[async_trait]
pub trait TokenSource: sealed::Sealed + Send + Sync + fmt::Debug {
    /// The tenant the token is for.
    fn tenant_id(&self) -> &str;
    /// The resource the token is for.
    fn audience(&self) -> Audience;
    /// The grant kind.
    fn kind(&self) -> TokenKind;
    /// A valid access token. With `stale`, a cached token equal to it is not returned again
    /// (it was just rejected), so a fresh one is fetched.
    async fn bearer(&self, stale: Option<&Secret>) -> Result<Secret>;
    /// An owned copy, for streams that outlive the borrow.
    fn to_shared(&self) -> Arc<dyn TokenSource>;
}
