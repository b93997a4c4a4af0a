//! Server-driven paging over Graph collections as streams.
//!
//! Contract: [`items`] yields the items of a collection one by one, fetching the next page only
//! when the current one is used up, so at most one page is in memory. `@odata.nextLink`s are
//! followed verbatim when they point at the configured Graph host; a link to any other host is
//! re-based onto it (path and query kept), so the bearer token never leaves the configured host.

use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::models::Page;
use crate::microsoft::token::TokenSource;
use crate::microsoft::transport::{Call, Service, Transport};
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::sync::Arc;

/// Fetches one page.
pub(crate) async fn fetch_page<T: DeserializeOwned>(
    transport: &Transport,
    token: &dyn TokenSource,
    url: Url,
    headers: &[(&'static str, String)],
) -> Result<Page<T>> {
    let mut call = Call::new(Method::GET, url, Service::Graph, token);
    for (k, v) in headers {
        call = call.header(k, v.clone());
    }
    transport.send(&call).await?.json()
}

/// Resolves a next/delta link against the configured Graph base.
pub(crate) fn rebase(transport: &Transport, link: &str) -> Result<Url> {
    let base = transport.endpoints().graph_base();
    let url = Url::parse(link).or_else(|_| base.join(link)).map_err(|e| {
        Error::new(
            Reason::InvalidResponse,
            format!("Graph sent an unusable paging link: {e}"),
        )
    })?;
    if url.origin() == base.origin() {
        return Ok(url);
    }
    let mut rebased = base.clone();
    let prefix = base.path().trim_end_matches('/');
    rebased.set_path(&format!("{prefix}{}", url.path()));
    rebased.set_query(url.query());
    Ok(rebased)
}

struct PageState<T> {
    next: Option<Url>,
    buffer: VecDeque<T>,
}

/// Streams every item of a collection, starting at `first`.
pub(crate) fn items<T>(
    transport: Arc<Transport>,
    token: Arc<dyn TokenSource>,
    first: Url,
    headers: Vec<(&'static str, String)>,
) -> BoxStream<'static, Result<T>>
where
    T: DeserializeOwned + Send + 'static,
{
    let state = PageState {
        next: Some(first),
        buffer: VecDeque::new(),
    };
    stream::try_unfold(state, move |mut st| {
        let (transport, token, headers) = (transport.clone(), token.clone(), headers.clone());
        async move {
            loop {
                if let Some(item) = st.buffer.pop_front() {
                    return Ok(Some((item, st)));
                }
                let Some(url) = st.next.take() else {
                    return Ok(None);
                };
                let page: Page<T> = fetch_page(&transport, token.as_ref(), url, &headers).await?;
                st.next = page
                    .next_link
                    .as_deref()
                    .map(|l| rebase(&transport, l))
                    .transpose()?;
                st.buffer = page.value.into();
            }
        }
    })
    .boxed()
}

/// Collects a (small) collection.
pub(crate) async fn collect<T>(
    transport: &Arc<Transport>,
    token: &dyn TokenSource,
    first: Url,
    headers: &[(&'static str, String)],
) -> Result<Vec<T>>
where
    T: DeserializeOwned + Send + 'static,
{
    let mut out = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next {
        let page: Page<T> = fetch_page(transport, token, url, headers).await?;
        out.extend(page.value);
        next = page
            .next_link
            .as_deref()
            .map(|l| rebase(transport, l))
            .transpose()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::{Endpoints, TransportConfig};

    proptest::proptest! {
        /// A paging link is outside data: it is refused or rebased onto the configured Graph
        /// host, so the bearer token never goes anywhere else.
        #[test]
        fn any_paging_link_stays_on_the_configured_host(
            link in "\\PC{0,80}|(https?|file|ftp)://[a-z.:@0-9]{0,20}/[a-z0-9/.?=&%$]{0,30}|//[a-z.]{1,12}/x|/v1.0/users\\?\\$skiptoken=[a-z]{0,8}",
        ) {
            let t = transport("http://127.0.0.1:1/base");
            if let Ok(url) = rebase(&t, &link) {
                proptest::prop_assert_eq!(url.origin(), t.endpoints().graph_base().origin(), "{}", url);
            }
        }
    }

    fn transport(base: &str) -> Arc<Transport> {
        Transport::new(TransportConfig::new(Endpoints::local(base, None).unwrap())).unwrap()
    }

    #[test]
    fn links_to_the_configured_host_are_kept_verbatim() {
        let t = transport("http://127.0.0.1:1");
        let link = "http://127.0.0.1:1/v1.0/users?%24select=id&%24skiptoken=Mg";
        assert_eq!(rebase(&t, link).unwrap().as_str(), link);
    }

    #[test]
    fn links_to_another_host_are_rebased_so_the_token_stays_home() {
        let t = transport("http://127.0.0.1:1/proxy");
        let link = "https://graph.microsoft.com/v1.0/users?$skiptoken=abc";
        assert_eq!(
            rebase(&t, link).unwrap().as_str(),
            "http://127.0.0.1:1/proxy/v1.0/users?$skiptoken=abc"
        );
        let evil = "https://evil.example/v1.0/users?$skiptoken=abc";
        assert_eq!(rebase(&t, evil).unwrap().host_str(), Some("127.0.0.1"));
    }
}
