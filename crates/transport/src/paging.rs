//! Listing connections page by page: following `_links.next.href` below the
//! endpoint only, re-sending the filter and limit a bare continuation link
//! lacks, and stopping a server that pages forever.

use std::collections::HashSet;

use atsprov_model::wire::{
    ATS_CONNECTION_SPEC_ID, Connection, ConnectionList, CountAnswer, ListedId, MAX_PAGE_SIZE,
};
use serde::de::DeserializeOwned;
use tracing::debug;
use url::Url;

use crate::client::{Call, Inner};
use crate::error::{Error, ErrorKind};
use crate::scrub::scrub;

/// The query parameter that carries the paging position.
const CONTINUATION: &str = "continuationToken";

/// Which ATS connections of a sandbox a listing asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Only<'a> {
    /// Every one.
    All,
    /// Those named exactly this.
    Named(&'a str),
    /// Those with one of these ids.
    Ids(&'a [&'a str]),
}

impl Only<'_> {
    /// Whether `connection` is one asked for (the server's filter is checked again here).
    fn wants(&self, connection: &impl Listed) -> bool {
        match self {
            Only::All => true,
            Only::Named(name) => connection.name() == *name,
            Only::Ids(ids) => ids.contains(&connection.id()),
        }
    }
}

/// What paging needs of a listed item, whichever way it is read.
pub(crate) trait Listed: DeserializeOwned {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn spec_id(&self) -> &str;
}

impl Listed for Connection {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn spec_id(&self) -> &str {
        &self.connection_spec.id
    }
}

impl Listed for ListedId {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn spec_id(&self) -> &str {
        &self.connection_spec.id
    }
}

impl Inner {
    /// `GET /connections` filtered to ATS connections and to what `only`
    /// asks for, and whether the server's filter says all of it: a name or
    /// id the filter syntax cannot carry (`,` means "any of") is left out,
    /// to be matched here over the wider listing.
    fn filtered(&self, only: Only<'_>) -> (Url, bool) {
        let mut url = self.url(&["connections"]);
        let mut query = url.query_pairs_mut();
        query.append_pair(
            "property",
            &format!("connectionSpec.id=={ATS_CONNECTION_SPEC_ID}"),
        );
        let exact = match only {
            Only::All => true,
            Only::Named(name) => filterable(name),
            Only::Ids(ids) => ids.iter().all(|id| filterable(id)),
        };
        if exact {
            match only {
                Only::All => {}
                Only::Named(name) => {
                    query.append_pair("property", &format!("name=={name}"));
                }
                Only::Ids(ids) => {
                    query.append_pair("property", &format!("id=={}", ids.join(",")));
                }
            }
        }
        drop(query);
        (url, exact)
    }

    /// The ATS connections of `sandbox` that `only` asks for, all pages.
    pub(crate) async fn list<T: Listed>(
        &self,
        sandbox: &str,
        only: Only<'_>,
    ) -> Result<Vec<T>, Error> {
        if matches!(only, Only::Ids(ids) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        let operation = match only {
            Only::All => "list connections".to_owned(),
            Only::Named(name) => format!("list connections named `{name}`"),
            Only::Ids(ids) => format!("list {} connection(s) by id", ids.len()),
        };
        let mut first = self.filtered(only).0;
        first
            .query_pairs_mut()
            .append_pair("limit", &MAX_PAGE_SIZE.to_string());
        let limits = self.sender.limits;
        let mut url = first.clone();
        let mut seen_pages = HashSet::new();
        let mut seen_tokens = HashSet::new();
        let mut seen_ids = HashSet::new();
        let mut items = Vec::new();
        let mut pages: u32 = 0;
        loop {
            let call = Call::get(operation.clone(), sandbox, url.clone());
            pages += 1;
            let page: ConnectionList<T> = self.json(&call).await?;
            debug!(
                sandbox,
                items = page.items.len(),
                "listed a page of connections"
            );
            // Pages read while others write can overlap; keep each id once.
            // Grown by exactly a page: a doubling vector of 10,000 live
            // connections would hold room for 16,384 (a third of a large
            // plan's memory, sandboxes being read at once).
            items.reserve_exact(page.items.len());
            items.extend(
                page.items
                    .into_iter()
                    .filter(|c| seen_ids.insert(c.id().to_owned())),
            );
            if items.len() > limits.max_items {
                return Err(call.error(
                    ErrorKind::Decode,
                    format!(
                        "the listing holds more than {} connections; atsprov reads no more than that from one sandbox",
                        limits.max_items
                    ),
                ));
            }
            let Some(href) = page
                .links
                .and_then(|l| l.next)
                .map(|n| n.href)
                .filter(|h| !h.trim().is_empty())
            else {
                break;
            };
            let shown = scrub(&href, &[]);
            url = next_page(&self.endpoint, &first, &href).ok_or_else(|| {
                call.error(
                    ErrorKind::Decode,
                    format!("the next-page link `{shown}` does not point below the endpoint"),
                )
            })?;
            let token = url
                .query_pairs()
                .find(|(key, _)| key == CONTINUATION)
                .map(|(_, value)| value.into_owned());
            let repeated_token = token.is_some_and(|t| !seen_tokens.insert(t));
            if repeated_token || !seen_pages.insert(url.to_string()) {
                return Err(call.error(
                    ErrorKind::Decode,
                    format!("the next-page link `{shown}` repeats a page already read"),
                ));
            }
            if pages >= limits.max_pages {
                return Err(call.error(
                    ErrorKind::Decode,
                    format!(
                        "the listing did not end after {pages} pages (the server keeps sending a next-page link); stopped there"
                    ),
                ));
            }
        }
        items.retain(|c| c.spec_id() == ATS_CONNECTION_SPEC_ID && only.wants(c));
        Ok(items)
    }
}

impl Inner {
    /// How many of the ATS connections with these ids show in listings: the
    /// listing filtered by id, counted (`count=true`), so no item is sent.
    /// An id the filter cannot carry, a count refused (400) or a count
    /// larger than the ids asked for (a server that did not apply the
    /// filter) makes it a listing, matched here.
    pub(crate) async fn count_by_ids(&self, sandbox: &str, ids: &[&str]) -> Result<usize, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        if let (mut url, true) = self.filtered(Only::Ids(ids)) {
            url.query_pairs_mut().append_pair("count", "true");
            let call = Call::get(
                format!("count {} connection(s) by id", ids.len()),
                sandbox,
                url,
            );
            match self.json::<CountAnswer>(&call).await {
                Ok(answer) => match usize::try_from(answer.count) {
                    Ok(count) if count <= ids.len() => return Ok(count),
                    _ => debug!(
                        sandbox,
                        count = answer.count,
                        asked = ids.len(),
                        "the count is larger than the ids asked for; listing them instead"
                    ),
                },
                // A server that refuses to count this way can still list.
                Err(err) if err.kind() == ErrorKind::BadRequest => {
                    debug!(
                        sandbox,
                        "counting by id was refused ({err}); listing instead"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        let listed: Vec<ListedId> = self.list(sandbox, Only::Ids(ids)).await?;
        Ok(listed.len())
    }
}

/// Resolves `_links.next.href`: a path relative to the endpoint, or a full
/// URL. A link to another origin is refused: the token must not go there.
/// A link without a `property` filter or a `limit` gets those of `first`,
/// so a bare continuation token does not widen or shrink the listing.
pub(crate) fn next_page(endpoint: &Url, first: &Url, href: &str) -> Option<Url> {
    let mut url = if href.starts_with("http://") || href.starts_with("https://") {
        Url::parse(href).ok()?
    } else {
        let base_path = endpoint.path().trim_end_matches('/');
        let path = if href.starts_with('/') {
            href.to_owned()
        } else {
            format!("/{href}")
        };
        let absolute = if !base_path.is_empty() && path.starts_with(&format!("{base_path}/")) {
            path
        } else {
            format!("{base_path}{path}")
        };
        endpoint.join(&absolute).ok()?
    };
    if url.origin() != endpoint.origin() {
        return None;
    }
    let has = |url: &Url, key: &str| url.query_pairs().any(|(k, _)| k == key);
    let missing: Vec<(String, String)> = first
        .query_pairs()
        .filter(|(key, _)| (key == "property" || key == "limit") && !has(&url, key))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !missing.is_empty() {
        url.query_pairs_mut().extend_pairs(missing);
    }
    Some(url)
}

/// Whether `name` (or an id) can go into `property=name==…` as it is.
pub(crate) fn filterable(name: &str) -> bool {
    !name.is_empty()
        && name.trim() == name
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_links_resolve_below_the_endpoint_with_the_filter() {
        let endpoint = Url::parse("https://platform.adobe.io/data/foundation/flowservice").unwrap();
        let base = endpoint.as_str();
        let first = Url::parse(&format!(
            "{base}/connections?property=connectionSpec.id%3D%3Dabc&limit=1000"
        ))
        .unwrap();
        let filter = "property=connectionSpec.id%3D%3Dabc&limit=1000";
        let cases = [
            (
                "/connections?continuationToken=abc",
                Some(format!("{base}/connections?continuationToken=abc&{filter}")),
            ),
            (
                "connections?continuationToken=abc",
                Some(format!("{base}/connections?continuationToken=abc&{filter}")),
            ),
            (
                "/data/foundation/flowservice/connections?continuationToken=abc&limit=10",
                Some(format!(
                    "{base}/connections?continuationToken=abc&limit=10&property=connectionSpec.id%3D%3Dabc"
                )),
            ),
            (
                "https://platform.adobe.io/data/foundation/flowservice/connections?property=x&limit=5",
                Some(format!("{base}/connections?property=x&limit=5")),
            ),
            ("https://evil.example.com/connections?x=1", None),
            (
                "http://platform.adobe.io/data/foundation/flowservice/connections",
                None,
            ),
        ];
        for (href, expected) in cases {
            assert_eq!(
                next_page(&endpoint, &first, href).map(String::from),
                expected,
                "{href}"
            );
        }
    }

    #[test]
    fn names_the_filter_can_carry() {
        for (name, ok) in [
            ("sales-eu", true),
            ("Sales EU 2", true),
            ("a_b.c", true),
            ("a,b", false),
            ("a==b", false),
            ("", false),
            (" padded", false),
            ("x&y", false),
        ] {
            assert_eq!(filterable(name), ok, "{name}");
        }
    }
}
