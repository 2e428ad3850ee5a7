//! The one request path: every HTTP call atsprov makes (Flow Service, IMS,
//! the Table key check) goes through [`Sender::send`], which waits at the
//! shared gate, bounds each attempt in time and its answer in size, retries
//! what the [`RetryPolicy`] allows and turns the rest into typed errors.

use std::cell::Cell;
use std::error::Error as _;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use atsprov_model::url_policy;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response};
use tracing::{Instrument, debug, debug_span, trace};
use url::Url;

use crate::config::{Limits, RetryPolicy, USER_AGENT};
use crate::error::{Error, ErrorKind};
use crate::retry::{Gate, backoff, parse_retry_after};
use crate::scrub::scrub;

tokio::task_local! {
    static ATTEMPTS: Cell<u32>;
}

/// Runs `work` and counts every HTTP attempt made inside it (retries, token
/// requests and re-reads included), on the task that awaits it.
///
/// This is how a caller learns the attempts of one item of work that may make
/// several calls: `let (outcome, attempts) = counting_attempts(async { … }).await;`.
/// Calls made by tasks spawned inside `work` are not counted.
pub async fn counting_attempts<F: Future>(work: F) -> (F::Output, u32) {
    ATTEMPTS
        .scope(Cell::new(0), async move {
            let output = work.await;
            (output, ATTEMPTS.with(Cell::get))
        })
        .await
}

fn note_attempt() {
    let _ = ATTEMPTS.try_with(|count| count.set(count.get().saturating_add(1)));
}

/// Counters shared by the clones of one client.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) congested: AtomicU64,
    pub(crate) token_requests: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Which service a call goes to: its error shape and the counter it bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Flow,
    Ims,
    Table,
}

/// How an answer that is not a success becomes an [`Error`].
pub(crate) type ReadError = fn(&Exchange<'_>, u16, &HeaderMap, &[u8]) -> Error;

/// One call, as the request path needs it.
pub(crate) struct Exchange<'a> {
    /// What a person reads in an error: ``create `sales-eu` ``.
    pub(crate) operation: String,
    pub(crate) sandbox: Option<&'a str>,
    pub(crate) service: Service,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    /// Whether sending the request twice is harmless.
    pub(crate) repeatable: bool,
    /// Secrets in the request, blanked out of anything the server echoes.
    pub(crate) secrets: Vec<&'a str>,
    pub(crate) read_error: ReadError,
}

impl Exchange<'_> {
    pub(crate) fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        let error = Error::new(kind, self.operation.clone(), message);
        match self.sandbox {
            Some(sandbox) => error.with_sandbox(sandbox),
            None => error,
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Vec<u8>,
    /// HTTP attempts this answer took, retries included.
    pub(crate) attempts: u32,
}

/// What one attempt came to.
enum Attempt {
    Done(Vec<u8>),
    Retry {
        error: Error,
        retry_after: Option<Duration>,
    },
    Fail(Error),
}

/// How many 429 answers a call may get for each attempt of its policy: a
/// throttled call waits its turn (the limiter meanwhile lowers concurrency)
/// rather than failing, but a server that never lets it in still ends it.
const THROTTLED_ATTEMPTS_PER_ATTEMPT: u32 = 4;

/// The HTTP stack and the policy every call shares.
///
/// Its three HTTP clients differ in proxies and roots; each is built when
/// first needed, so a run builds only those its endpoints need. Building one
/// that speaks TLS loads the system's root certificates, a few milliseconds
/// of start-up; the one for plain `http://` loopback loads none.
#[derive(Debug)]
pub(crate) struct Sender {
    /// For real endpoints: honours `HTTPS_PROXY` and friends.
    proxied: OnceLock<reqwest::Client>,
    /// For `https://` on loopback: never through a proxy.
    direct: OnceLock<reqwest::Client>,
    /// For `http://` on loopback (the emulator, Azurite): never through a
    /// proxy, and no root certificates, since it never speaks TLS.
    plain: OnceLock<reqwest::Client>,
    connect_timeout: Duration,
    retry: RetryPolicy,
    pub(crate) limits: Limits,
    request_timeout: Duration,
    pub(crate) gate: Gate,
    pub(crate) counters: Counters,
}

impl Sender {
    pub(crate) fn new(
        retry: RetryPolicy,
        limits: Limits,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, Error> {
        let mut retry = retry;
        retry.max_attempts = retry.max_attempts.max(1);
        Ok(Self {
            proxied: OnceLock::new(),
            direct: OnceLock::new(),
            plain: OnceLock::new(),
            connect_timeout,
            retry,
            limits,
            request_timeout,
            gate: Gate::default(),
            counters: Counters::default(),
        })
    }

    /// The HTTP client for `url` (loopback hosts never go through a proxy),
    /// built at its first use. Fails with [`ErrorKind::Config`] when the
    /// HTTP stack cannot be set up (no root certificate found, say).
    pub(crate) fn http_for(&self, url: &Url) -> Result<&reqwest::Client, Error> {
        let direct = url_policy::is_loopback(url);
        let plain = direct && url.scheme() == "http";
        let cell = if plain {
            &self.plain
        } else if direct {
            &self.direct
        } else {
            &self.proxied
        };
        if let Some(http) = cell.get() {
            return Ok(http);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            // The APIs do not redirect; following one could carry a secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Retries are ours (`RetryPolicy`); reqwest's would also copy
            // every request in case it retries.
            .retry(reqwest::retry::never().max_retries_per_request(0));
        if direct {
            builder = builder.no_proxy();
        }
        if plain {
            // Trusts no certificate at all: a TLS connection through this
            // client could not be verified, and none is ever made with it.
            builder = builder.tls_certs_only([]);
        }
        let built = builder.build().map_err(|e| {
            Error::config("the HTTP client could not be set up".into()).with_source(e)
        })?;
        // Two first calls at once may both build: one is kept.
        Ok(cell.get_or_init(|| built))
    }

    /// Sends `exchange` until it succeeds, fails for good, or the retry
    /// policy is spent. An error carries the number of attempts made.
    pub(crate) async fn send(&self, exchange: &Exchange<'_>) -> Result<Answer, Error> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        // 429s: "come back later", the call not carried out. They do not use
        // up the attempts (a tight rate limit would otherwise fail calls that
        // only had to wait); the time budget still bounds them.
        let mut throttled: u32 = 0;
        loop {
            attempt += 1;
            self.gate.pass().await;
            let span = debug_span!(
                "request",
                service = ?exchange.service,
                method = %exchange.method,
                sandbox = exchange.sandbox,
                attempt,
            );
            let (error, retry_after) = match self.attempt(exchange).instrument(span).await {
                Attempt::Done(body) => {
                    return Ok(Answer {
                        body,
                        attempts: attempt,
                    });
                }
                Attempt::Fail(error) => return Err(error.with_attempts(attempt)),
                Attempt::Retry { error, retry_after } => (error, retry_after),
            };
            if error.status() == Some(429) {
                throttled += 1;
            }
            let delay = match self.delay_before_retry(attempt, throttled, started, retry_after) {
                Some(delay) => delay,
                None => return Err(error.with_attempts(attempt)),
            };
            bump(&self.counters.retries);
            debug!(
                attempt,
                status = error.status(),
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// How long to wait before the next attempt, or `None` when the policy
    /// allows none. `attempt` counts every attempt; `throttled`, those
    /// answered 429, which only the time budget limits.
    fn delay_before_retry(
        &self,
        attempt: u32,
        throttled: u32,
        started: Instant,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        // One attempt means no retry at all, 429 or not.
        let spent = if self.retry.max_attempts <= 1 {
            attempt
        } else {
            attempt - throttled
        };
        if spent >= self.retry.max_attempts
            || throttled >= THROTTLED_ATTEMPTS_PER_ATTEMPT * self.retry.max_attempts
        {
            debug!(attempt, "giving up: no attempts left");
            return None;
        }
        let delay = match retry_after {
            Some(asked) => asked.min(self.retry.max_retry_after),
            None => backoff(&self.retry, attempt),
        };
        if started.elapsed() + delay > self.retry.max_elapsed {
            debug!(attempt, "giving up: the retry time budget is spent");
            return None;
        }
        Some(delay)
    }

    /// Sends `exchange` once, the answer read whole, within the request timeout.
    async fn attempt(&self, exchange: &Exchange<'_>) -> Attempt {
        let http = match self.http_for(&exchange.url) {
            Ok(http) => http,
            Err(error) => {
                let error = match exchange.sandbox {
                    Some(sandbox) => error.with_sandbox(sandbox),
                    None => error,
                };
                return Attempt::Fail(error);
            }
        };
        // Built whole rather than through a builder, which would merge the
        // headers one by one; the body is shared, not copied.
        let mut request = reqwest::Request::new(exchange.method.clone(), exchange.url.clone());
        *request.headers_mut() = exchange.headers.clone();
        if let Some(body) = &exchange.body {
            *request.body_mut() = Some(body.clone().into());
        }
        bump(match exchange.service {
            Service::Ims => &self.counters.token_requests,
            Service::Flow | Service::Table => &self.counters.requests,
        });
        note_attempt();
        trace!("sending");
        // reqwest's own timeout covers the same span; this one also bounds
        // our reading of the body, whatever the server does.
        let exchanged = tokio::time::timeout(self.request_timeout, async {
            let response = http.execute(request).await.map_err(Failure::Send)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = self
                .read_body(response, (200..300).contains(&status))
                .await?;
            Ok::<_, Failure>((status, headers, body))
        })
        .await
        .unwrap_or(Err(Failure::Deadline));
        let (status, headers, body) = match exchanged {
            Ok(answer) => answer,
            Err(failure) => return self.failure(exchange, failure),
        };
        debug!(
            status,
            request_id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(|id| scrub(id, &exchange.secrets)),
            "answered"
        );
        if (200..300).contains(&status) {
            return Attempt::Done(body);
        }
        let error = (exchange.read_error)(exchange, status, &headers, &body);
        let retry_after = retry_after(&headers);
        if matches!(status, 429 | 500 | 502 | 503 | 504) {
            // Congestion. The caller's limiter learns of it through the
            // counter; when the server said how long to pause, every call of
            // the client waits that long, not only this one, even when this
            // one is not repeated (a create that got a 500). Without a
            // `Retry-After` only this call backs off (with jitter), so
            // scattered faults do not stall the whole client.
            bump(&self.counters.congested);
            if let Some(asked) = retry_after {
                self.gate
                    .close_until(Instant::now() + asked.min(self.retry.max_retry_after));
            }
        }
        match status {
            // Refusals: the request was not carried out, so even a create may repeat.
            429 | 503 => Attempt::Retry { error, retry_after },
            500 | 502 | 504 if exchange.repeatable => Attempt::Retry { error, retry_after },
            // A crash or a gateway error after a create was sent: it may have been done.
            500 | 502 | 504 => {
                let hint = "the connection may or may not have been created: list the sandbox before trying again";
                Attempt::Fail(error.with_kind(ErrorKind::Ambiguous).with_hint(hint))
            }
            _ => Attempt::Fail(error),
        }
    }

    /// Reads a body up to the cap. A success over the cap is an error; an
    /// error body is cut at the cap (only its start is shown anyway).
    async fn read_body(&self, mut response: Response, success: bool) -> Result<Vec<u8>, Failure> {
        let cap = self.limits.max_body_bytes;
        if success && response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(Failure::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::Read)? {
            if body.len() + chunk.len() > cap {
                if success {
                    return Err(Failure::TooLarge(cap));
                }
                body.extend_from_slice(&chunk[..cap - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Classifies an attempt that got no complete answer.
    fn failure(&self, exchange: &Exchange<'_>, failure: Failure) -> Attempt {
        let target = origin(&exchange.url);
        let ambiguous_hint =
            "the connection may or may not have been created: list the sandbox before trying again";
        let (kind, what, source, sent) = match failure {
            Failure::TooLarge(cap) => {
                let error = exchange.error(
                    ErrorKind::Decode,
                    format!(
                        "the answer from {target} is larger than {}; atsprov reads no more than that",
                        size(cap)
                    ),
                );
                return Attempt::Fail(if exchange.repeatable {
                    error
                } else {
                    error
                        .with_kind(ErrorKind::Ambiguous)
                        .with_hint(ambiguous_hint)
                });
            }
            Failure::Deadline => (
                ErrorKind::Timeout,
                format!(
                    "no complete answer from {target} within {}s",
                    self.request_timeout.as_secs_f64()
                ),
                None,
                true,
            ),
            Failure::Send(e) if e.is_builder() => {
                return Attempt::Fail(
                    exchange
                        .error(ErrorKind::Config, "the request could not be built")
                        .with_source(e),
                );
            }
            Failure::Send(e) if e.is_connect() => {
                let cause = cause_in_words(&e);
                (
                    ErrorKind::Connect,
                    format!("could not connect to {target} ({cause})"),
                    Some(e),
                    false,
                )
            }
            Failure::Send(e) | Failure::Read(e) => {
                let (kind, what) = if e.is_timeout() {
                    (
                        ErrorKind::Timeout,
                        format!(
                            "no complete answer from {target} within {}s",
                            self.request_timeout.as_secs_f64()
                        ),
                    )
                } else {
                    (
                        ErrorKind::Connect,
                        format!(
                            "the connection to {target} broke before the answer was complete ({})",
                            cause_in_words(&e)
                        ),
                    )
                };
                (kind, what, Some(e), true)
            }
        };
        let mut error = exchange.error(kind, what);
        if let Some(source) = source {
            error = error.with_source(source);
        }
        if sent && !exchange.repeatable {
            return Attempt::Fail(
                error
                    .with_kind(ErrorKind::Ambiguous)
                    .with_hint(ambiguous_hint),
            );
        }
        Attempt::Retry {
            error,
            retry_after: None,
        }
    }
}

/// Why an attempt got no usable answer.
enum Failure {
    Send(reqwest::Error),
    Read(reqwest::Error),
    TooLarge(usize),
    Deadline,
}

/// A byte count as people read it: whole MiB when it is some, else bytes.
fn size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `scheme://host:port` of a URL, the port always shown.
pub(crate) fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// The cause of a network failure in words: connection refused, timed out,
/// TLS, DNS lookup failed, … (never the raw chain, which is long and varies).
pub(crate) fn cause_in_words(e: &reqwest::Error) -> &'static str {
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = e.source();
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused",
                std::io::ErrorKind::ConnectionReset => return "connection reset by the server",
                std::io::ErrorKind::TimedOut => return "timed out",
                std::io::ErrorKind::UnexpectedEof => return "the server closed the connection",
                _ => {}
            }
        }
        chain.push_str(&current.to_string().to_ascii_lowercase());
        chain.push(' ');
        source = current.source();
    }
    if e.is_timeout() || chain.contains("timed out") {
        "timed out"
    } else if chain.contains("dns error") || chain.contains("lookup address") {
        "DNS lookup failed: check the host name"
    } else if [
        "certificate",
        "tls",
        "handshake",
        "invalid peer",
        "corrupt message",
        "fatal alert",
    ]
    .iter()
    .any(|word| chain.contains(word))
    {
        "TLS handshake failed: check the URL and any proxy that intercepts TLS"
    } else if chain.contains("refused") {
        "connection refused"
    } else if chain.contains("closed") || chain.contains("incomplete") || chain.contains("eof") {
        "the server closed the connection"
    } else {
        "network error"
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// A header value for `what`, or a configuration error naming it.
pub(crate) fn header_value(what: &str, value: &str) -> Result<HeaderValue, Error> {
    if value.trim().is_empty() {
        return Err(Error::config(format!("the {what} is empty")));
    }
    HeaderValue::from_str(value)
        .map_err(|_| Error::config(format!("the {what} `{value}` cannot be sent in a header")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_always_show_the_port() {
        for (url, expected) in [
            ("http://127.0.0.1:9/x?y", "http://127.0.0.1:9"),
            (
                "https://platform.adobe.io/data",
                "https://platform.adobe.io:443",
            ),
            ("http://[::1]/", "http://[::1]:80"),
        ] {
            assert_eq!(origin(&Url::parse(url).unwrap()), expected);
        }
    }

    fn exchange(url: Url, method: Method) -> Exchange<'static> {
        Exchange {
            operation: "create `n`".into(),
            sandbox: Some("prod"),
            service: Service::Flow,
            repeatable: method != Method::POST,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            secrets: Vec::new(),
            read_error: |exchange, status, headers, body| {
                Error::from_answer(exchange.operation.clone(), status, headers, body, &[])
            },
        }
    }

    /// A create that got a 500 is not repeated, but the whole client backs
    /// off: the gate closes for the pause the server asked for, and the
    /// congestion counter the caller's limiter watches grows.
    #[tokio::test]
    async fn overload_closes_the_gate_even_when_the_call_is_not_repeated() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any};
        for status in [429, 500, 502, 503, 504] {
            let server = MockServer::start().await;
            Mock::given(any())
                .respond_with(ResponseTemplate::new(status).insert_header("retry-after", "600"))
                .mount(&server)
                .await;
            let policy = RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            };
            let sender = Sender::new(
                policy,
                Limits::default(),
                Duration::from_secs(5),
                Duration::from_secs(5),
            )
            .unwrap();
            let url = Url::parse(&server.uri()).unwrap();
            let e = sender.send(&exchange(url, Method::POST)).await.unwrap_err();
            let expected = match status {
                429 => ErrorKind::RateLimited,
                503 => ErrorKind::Server,
                _ => ErrorKind::Ambiguous,
            };
            assert_eq!(e.kind(), expected, "{status}");
            assert!(sender.gate.remaining(Instant::now()).is_some(), "{status}");
            assert_eq!(sender.counters.congested.load(Ordering::Relaxed), 1);
        }
    }

    #[test]
    fn only_the_http_client_a_url_needs_is_built_and_then_kept() {
        let sender = Sender::new(
            RetryPolicy::default(),
            Limits::default(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .unwrap();
        let built = |s: &Sender| [&s.plain, &s.direct, &s.proxied].map(|cell| cell.get().is_some());
        assert_eq!(built(&sender), [false; 3]);
        let local = Url::parse("http://127.0.0.1:9/x").unwrap();
        let first: *const reqwest::Client = sender.http_for(&local).unwrap();
        assert_eq!(
            built(&sender),
            [true, false, false],
            "a loopback run builds one"
        );
        let again: *const reqwest::Client = sender.http_for(&local).unwrap();
        assert_eq!(first, again, "built once");
        let local_tls = Url::parse("https://127.0.0.1:9/x").unwrap();
        let tls: *const reqwest::Client = sender.http_for(&local_tls).unwrap();
        assert_ne!(first, tls, "https on loopback gets a client with roots");
        assert_eq!(built(&sender), [true, true, false]);
        let remote = Url::parse("https://platform.adobe.io/x").unwrap();
        sender.http_for(&remote).unwrap();
        assert_eq!(built(&sender), [true, true, true]);
    }

    #[tokio::test]
    async fn attempts_are_counted_per_scope() {
        let ((), outside) = counting_attempts(async {}).await;
        assert_eq!(outside, 0);
        let ((), counted) = counting_attempts(async {
            note_attempt();
            note_attempt();
        })
        .await;
        assert_eq!(counted, 2);
        // Outside any scope, nothing happens.
        note_attempt();
    }
}
