//! With every log at TRACE captured (ours, reqwest's, hyper's and rustls'), a
//! token fetch, a create, a patch and failures leave no secret in the logs, in
//! error messages or in `Debug` output. Its own test binary, because it installs
//! the process-wide subscriber so that logs from every thread are captured.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atsprov_model::Secret;
use atsprov_model::manifest::Auth;
use atsprov_model::wire::{NewConnection, PatchOp};
use atsprov_transport::{Client, ClientConfig, RetryPolicy};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_SECRET: &str = "p8e-CLIENT-SECRET-0451";
const TOKEN_1: &str = "eyJTOKEN-ONE-never-log-me";
const TOKEN_2: &str = "eyJTOKEN-TWO-never-log-me";
const ACCOUNT_KEY_1: &str = "QUNDT1VOVC1LRVktT05F";
const ACCOUNT_KEY_2: &str = "QUNDT1VOVC1LRVktVFdP";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn connection_string(key: &str) -> Secret {
    Secret::new(format!(
        "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={key}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_errors_or_debug_output() {
    let capture = Capture::default();
    // `try_init` also routes the `log` crate (used by reqwest and rustls) here.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(capture.clone())
        .try_init()
        .unwrap();

    let server = MockServer::start().await;
    let base = "/data/foundation/flowservice";
    Mock::given(method("POST"))
        .and(path("/ims/token/v3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": TOKEN_1, "token_type": "bearer", "expires_in": 86399}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ims/token/v3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": TOKEN_2, "token_type": "bearer", "expires_in": 86399}),
        ))
        .mount(&server)
        .await;
    // The first create is answered 401 (renewal), then 503 (retry), then 201.
    Mock::given(method("POST"))
        .and(path(format!("{base}/connections")))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {TOKEN_1}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error_code": "401013", "message": "Oauth token is not valid"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{base}/connections")))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{base}/connections")))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": "c1", "etag": "\"e1\""})),
        )
        .mount(&server)
        .await;
    // The patch is answered 200, then a 400 that echoes the secret back.
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "c1", "etag": "\"e2\""})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "https://ns.adobe.com/aep/errors/FLOW-1455-400",
            "title": "Bad patch",
            "errorMessage": format!("cannot apply DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={ACCOUNT_KEY_2}")
        })))
        .mount(&server)
        .await;

    let mut config = ClientConfig::new(
        Url::parse(&format!("{}{base}", server.uri())).unwrap(),
        "ORG@AdobeOrg",
        "client-id",
        Auth::ClientCredentials {
            token_url: Url::parse(&format!("{}/ims/token/v3", server.uri())).unwrap(),
            client_secret: Secret::new(CLIENT_SECRET),
            scopes: vec!["openid".into()],
        },
    );
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        ..RetryPolicy::default()
    };
    let debug_config = format!("{config:?}");
    let client = Client::new(config).unwrap();
    let mut shown = vec![debug_config, format!("{client:?}")];

    client.authenticate().await.unwrap();
    let created = client
        .create_connection(
            "prod",
            &NewConnection::ats("sales-eu", "d", connection_string(ACCOUNT_KEY_1)),
        )
        .await
        .unwrap();
    shown.push(format!("{created:?}"));
    let ops = [
        PatchOp::Credentials(connection_string(ACCOUNT_KEY_2)),
        PatchOp::Description("d2".into()),
    ];
    shown.push(format!("{ops:?}"));
    client
        .patch_connection("prod", "c1", "\"e1\"", &ops)
        .await
        .unwrap();
    let e = client
        .patch_connection("prod", "c1", "\"e2\"", &ops)
        .await
        .unwrap_err();
    shown.push(format!("{e} {e:?}"));

    // A wrong client secret: its error must not show the secret either.
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": format!("bad client_secret={CLIENT_SECRET}")
        })))
        .mount(&refusing)
        .await;
    let wrong = Client::new(ClientConfig::new(
        Url::parse(&format!("{}{base}", refusing.uri())).unwrap(),
        "ORG@AdobeOrg",
        "client-id",
        Auth::ClientCredentials {
            token_url: Url::parse(&format!("{}/ims/token/v3", refusing.uri())).unwrap(),
            client_secret: Secret::new(CLIENT_SECRET),
            scopes: vec![],
        },
    ))
    .unwrap();
    let e = wrong.authenticate().await.unwrap_err();
    shown.push(format!("{e} {e:?}"));

    let stats = client.stats();
    assert_eq!(
        (stats.token_requests, stats.retries),
        (2, 1),
        "the scenario ran as intended"
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture really holds TRACE output of ours and of the HTTP stack.
    assert!(logs.contains("request{service=Flow"), "{logs}");
    assert!(logs.contains("request{service=Ims"), "{logs}");
    assert!(logs.contains("TRACE"), "{logs}");
    assert!(logs.contains("hyper") || logs.contains("reqwest"), "{logs}");
    for secret in [
        CLIENT_SECRET,
        TOKEN_1,
        TOKEN_2,
        ACCOUNT_KEY_1,
        ACCOUNT_KEY_2,
    ] {
        assert!(!logs.contains(secret), "`{secret}` is in the logs");
        for text in &shown {
            assert!(!text.contains(secret), "`{secret}` is in {text}");
        }
    }
}
