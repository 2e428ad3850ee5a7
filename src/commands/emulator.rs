//! `atsprov emulator`: serves the Flow Service + IMS emulator until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use atsprov_emulator::Config;
use atsprov_model::Secret;

use crate::cli::EmulatorArgs;
use crate::exit::{Exit, Failure, Outcome};

pub(crate) fn run(args: EmulatorArgs) -> Outcome {
    // A flag's value the emulator cannot take is a bad command line (64).
    let config = config(args).map_err(Failure::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

fn config(args: EmulatorArgs) -> anyhow::Result<Config> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        anyhow!(
            "`--listen` must be an address like `127.0.0.1:8080`, got `{}`",
            args.listen
        )
    })?;
    let sandboxes: Vec<String> = args
        .sandboxes
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let table_accounts = args
        .table_accounts
        .iter()
        .map(table_account)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = Config {
        listen,
        sandboxes: (!sandboxes.is_empty()).then_some(sandboxes),
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: args.rate_limit,
        fail_rate: args.fail_rate,
        ambiguous_rate: args.ambiguous_rate,
        client_credentials: args.client_id.zip(args.client_secret),
        token_ttl: Duration::from_secs(args.token_ttl),
        page_size: args.page_size,
        seed: args.seed,
        table_accounts,
        list_lag: Duration::from_millis(args.list_lag_ms),
        patch_enabled: !args.no_patch,
        required_scopes: (!args.required_scopes.is_empty()).then(|| {
            args.required_scopes
                .iter()
                .map(|s| s.trim().to_owned())
                .collect()
        }),
        overload_500: args.overload_500,
        ..Config::default()
    };
    config.validate().map_err(|err| {
        let flag = match &err {
            atsprov_emulator::ConfigError::Rate { name, .. } => {
                format!("--{}", name.replace('_', "-"))
            }
            atsprov_emulator::ConfigError::PageSize(_) => "--page-size".to_owned(),
            atsprov_emulator::ConfigError::RateLimit => "--rate-limit".to_owned(),
            atsprov_emulator::ConfigError::SandboxName(_) => "--sandboxes".to_owned(),
            atsprov_emulator::ConfigError::RequiredScopes => "--required-scopes".to_owned(),
            atsprov_emulator::ConfigError::Timeout(name) => format!("--{}", name.replace('_', "-")),
            atsprov_emulator::ConfigError::MaxTokens => "--max-tokens".to_owned(),
            atsprov_emulator::ConfigError::TableAccountName(_)
            | atsprov_emulator::ConfigError::DuplicateTableAccount(_)
            | atsprov_emulator::ConfigError::TableAccountKey(_) => "--table-account".to_owned(),
        };
        anyhow!(err).context(format!("invalid `{flag}`"))
    })?;
    Ok(config)
}

/// One `--table-account NAME=KEY`. Errors never show the value: it holds the key.
fn table_account(value: &Secret) -> anyhow::Result<(String, Secret)> {
    let Some((name, key)) = value.expose().split_once('=') else {
        return Err(anyhow!(
            "`--table-account` must be NAME=KEY (a storage account and its base64 key); the value has no `=`"
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(anyhow!(
            "`--table-account` must be NAME=KEY (a storage account and its base64 key); the name is empty"
        ));
    }
    // The key's base64 and the name's characters are checked by `Config::validate`.
    Ok((name.to_owned(), Secret::new(key.trim())))
}

async fn serve(config: Config) -> Outcome {
    let listen = config.listen;
    // Listen for signals before announcing the address, so a signal sent right after the
    // first line is handled as a clean shutdown.
    let signals = atsprov_runner::Signals::listen();
    let emulator = atsprov_emulator::start(config)
        .await
        .with_context(|| format!("cannot listen on `{listen}`"))
        .map_err(Failure::Fatal)?;
    crate::output::stdout(&format!(
        "listening on http://{}\nflow service: {}\ntoken url: {}\n",
        emulator.addr(),
        emulator.flow_url(),
        emulator.token_url()
    ))
    .context("cannot write to stdout")?;
    signals.interrupt().pressed().await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(Exit::Success)
}
