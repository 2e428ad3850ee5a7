//! The command-line interface: every command, option and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--version`: the crate version, the git commit and the build date (from
/// `build.rs`; "unknown" when built outside git).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("ATSPROV_GIT_COMMIT"),
    " ",
    env!("ATSPROV_BUILD_DATE"),
    ")"
);

/// Provision Adobe Experience Platform Flow Service connections for Azure
/// Table Storage accounts, in bulk, from a TOML manifest.
#[derive(Debug, Parser)]
#[command(
    name = "atsprov",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Only errors on stderr; no progress
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// When to use colour (NO_COLOR is honoured with `auto`)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub(crate) color: ColorChoice,
    /// Format of log lines on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a manifest offline: parse, check every field, resolve secret references
    Validate(ValidateArgs),
    /// Read live state from the API and print the diff; changes nothing
    Plan(PlanArgs),
    /// Compute the plan and carry it out concurrently, then print a summary and write reports
    Apply(ApplyArgs),
    /// Check each storage account's key against its own Table endpoint (Shared Key Lite)
    Verify(VerifyArgs),
    /// Every live ATS connection in the manifest's sandboxes: who manages it, whether it matches, duplicates
    List(ListArgs),
    /// Run a local Flow Service + IMS emulator, for demos, rehearsals and tests
    Emulator(EmulatorArgs),
    /// Print the JSON Schema of the manifest, the JSON plan, the JSON report or verify's JSON
    Schema(SchemaArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Which schema
    #[arg(value_enum)]
    pub(crate) kind: SchemaKind,
}

/// `schema KIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemaKind {
    /// The TOML manifest (for taplo / Even Better TOML: `#:schema` directive)
    Manifest,
    /// `plan --format json`
    Plan,
    /// `apply --report FILE.json`
    Report,
    /// `verify --format json`
    Verify,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The manifest (TOML)
    pub(crate) manifest: PathBuf,
}

/// What `plan` and `apply` work on.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The manifest (TOML)
    pub(crate) manifest: PathBuf,
    /// Limit to this sandbox (repeatable)
    #[arg(long = "sandbox", value_name = "NAME")]
    pub(crate) sandboxes: Vec<String>,
    /// Limit to the accounts with this name (repeatable; `*` matches any run of characters); orphans too
    #[arg(long = "target", value_name = "NAME")]
    pub(crate) targets: Vec<String>,
    /// Also delete connections atsprov manages that the manifest no longer declares
    #[arg(long)]
    pub(crate) prune: bool,
    /// First check each account's key against its Table endpoint; `apply` skips accounts that fail
    #[arg(long)]
    pub(crate) verify: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The manifest (TOML)
    pub(crate) manifest: PathBuf,
    /// Limit to the accounts with this name (repeatable; `*` matches any run of characters)
    #[arg(long = "target", value_name = "NAME")]
    pub(crate) targets: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub(crate) format: PlanFormat,
    /// Write the result to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The manifest (TOML)
    pub(crate) manifest: PathBuf,
    /// Limit to this sandbox (repeatable)
    #[arg(long = "sandbox", value_name = "NAME")]
    pub(crate) sandboxes: Vec<String>,
    /// Limit to the connections with this name (repeatable; `*` matches any run of characters)
    #[arg(long = "target", value_name = "NAME")]
    pub(crate) targets: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub(crate) format: ListFormat,
    /// Write the listing to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// `list --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub(crate) format: PlanFormat,
    /// Write the plan to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Exit 2 when changes are pending, 0 when there are none, 1 on errors
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
}

/// `plan --format` and `verify --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Most API calls in flight at once [default: the manifest's, else 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) concurrency: Option<u32>,
    /// Print the plan and write nothing to the API
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Write the report to FILE (repeatable)
    #[arg(long = "report", value_name = "FILE")]
    pub(crate) reports: Vec<PathBuf>,
    /// Format of each --report, in the same order [default: from the extension: .json, .md, .xml]
    #[arg(long = "report-format", value_enum, value_name = "FORMAT")]
    pub(crate) report_formats: Vec<ReportFormatArg>,
    /// Carry out exactly this JSON plan (from `plan --format json --out FILE`); refused when the manifest or the live connections changed since
    #[arg(long = "plan", value_name = "FILE", conflicts_with = "dry_run")]
    pub(crate) saved_plan: Option<PathBuf>,
    /// Write nothing when the plan would delete more than N connections (prune and dedupe deletes alike) [default: the manifest's `max_deletes`, else 10]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub(crate) max_deletes: Option<u32>,
    /// Never ask for confirmation (at a terminal, apply prints the plan and asks for `yes` first)
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// After a sandbox with a failure, skip the sandboxes after it (they run in the manifest's order)
    #[arg(long)]
    pub(crate) fail_fast: bool,
    /// Seconds to wait for another atsprov run on the same sandboxes to finish before giving up
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub(crate) lock_timeout: u64,
}

/// `apply --report-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormatArg {
    Json,
    Markdown,
    Junit,
}

#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Sandboxes that exist, comma-separated (default: any lowercase name)
    #[arg(long, value_delimiter = ',')]
    pub(crate) sandboxes: Vec<String>,
    /// Milliseconds added to every API response
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Requests per second per organization; above it, 429 with Retry-After
    #[arg(long)]
    pub(crate) rate_limit: Option<u32>,
    /// Fraction of API requests answered 503 (1103-503)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) fail_rate: f64,
    /// Fraction of writes carried out, after which the connection is dropped with no response
    #[arg(long, default_value_t = 0.0)]
    pub(crate) ambiguous_rate: f64,
    /// Only this client id gets tokens (default: any)
    #[arg(long, requires = "client_secret")]
    pub(crate) client_id: Option<String>,
    /// Only this client secret gets tokens (default: any)
    #[arg(long, requires = "client_id")]
    pub(crate) client_secret: Option<String>,
    /// Lifetime of issued tokens, in seconds
    #[arg(long, default_value_t = 86399)]
    pub(crate) token_ttl: u64,
    /// Default page size of GET /connections
    #[arg(long, default_value_t = 100)]
    pub(crate) page_size: u32,
    /// Makes the random faults repeatable
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// A storage account of the Table service imitation at /NAME/Tables, with its base64 key (repeatable)
    #[arg(
        long = "table-account",
        value_name = "NAME=KEY",
        value_parser = |value: &str| Ok::<_, std::convert::Infallible>(atsprov_model::Secret::new(value))
    )]
    pub(crate) table_accounts: Vec<atsprov_model::Secret>,
    /// Milliseconds after its creation before a connection shows in listings (reads by id find it at once)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) list_lag_ms: u64,
    /// PATCH answers 1445-400 "PATCH Connection Feature not enabled"
    #[arg(long)]
    pub(crate) no_patch: bool,
    /// Scopes a token request must all ask for (invalid_scope otherwise), comma-separated; tokens without additional_info.projectedProductContext then get 403025
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub(crate) required_scopes: Vec<String>,
    /// Above --rate-limit, answer 1102-500 with no Retry-After instead of 429
    #[arg(long = "overload-500", requires = "rate_limit")]
    pub(crate) overload_500: bool,
}
