//! What the runner's tests share: the organization, a client of the
//! in-process emulator, desired connections, a plan of `prod`, and the
//! emulator's counts.

use atsprov_emulator::RunningEmulator;
use atsprov_model::manifest::Auth;
use atsprov_model::plan::Options;
use atsprov_model::{DesiredConnection, Secret};
use atsprov_runner::{Planned, make_plan};
use atsprov_transport::{Client, ClientConfig};

pub(crate) const ORG: &str = "RUNNER0123456789ABCDEF01@AdobeOrg";

/// A client of the emulator with this API key (the emulator keeps rate
/// limits and stats per key, so tests can tell their calls apart).
pub(crate) fn client(emu: &RunningEmulator, api_key: &str) -> Client {
    let config = ClientConfig::new(
        emu.flow_url().parse().unwrap(),
        ORG,
        api_key,
        Auth::ClientCredentials {
            token_url: emu.token_url().parse().unwrap(),
            client_secret: Secret::new("runner-test-secret"),
            scopes: vec!["openid".into()],
        },
    );
    Client::new(config).unwrap()
}

/// One desired connection per name in `prod`, account `acct{i}` with `key`.
pub(crate) fn desired<S: AsRef<str>>(names: &[S], key: &str) -> Vec<DesiredConnection> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cs = format!("DefaultEndpointsProtocol=https;AccountName=acct{i};AccountKey={key}");
            DesiredConnection::new(
                ORG,
                "prod",
                name.as_ref(),
                "Runner tables",
                Secret::new(cs),
                false,
                i,
            )
        })
        .collect()
}

/// The plan of `prod` for `want`; the sandbox must be readable.
pub(crate) async fn plan_for(client: &Client, want: &[DesiredConnection]) -> Planned {
    let sandboxes = ["prod".to_owned()];
    let options = Options {
        sandboxes: &sandboxes,
        ..Options::default()
    };
    let planned = make_plan(client, want, options).await.unwrap();
    assert!(planned.plan.errors.is_empty(), "{:?}", planned.plan.errors);
    planned
}

/// `GET /_emulator/stats`.
pub(crate) async fn stats(emu: &RunningEmulator) -> serde_json::Value {
    let text = reqwest::get(emu.stats_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}
