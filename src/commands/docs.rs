//! `atsprov schema`, `atsprov completions` and the hidden `atsprov __man`:
//! what the binary says about itself, generated from its own definitions.

use anyhow::{Context as _, anyhow};
use atsprov_model::schema::Kind;
use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, SchemaArgs, SchemaKind};
use crate::exit::{Exit, Failure, Outcome};

/// Prints one JSON Schema on stdout.
pub(crate) fn schema(args: SchemaArgs) -> Outcome {
    let kind = match args.kind {
        SchemaKind::Manifest => Kind::Manifest,
        SchemaKind::Plan => Kind::Plan,
        SchemaKind::Report => Kind::Report,
    };
    print(&kind.to_json())
}

/// Prints a completion script for one shell on stdout.
pub(crate) fn completions(args: CompletionsArgs) -> Outcome {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "atsprov", &mut script);
    let script = String::from_utf8(script)
        .map_err(|_| Failure::Fatal(anyhow!("the completion script is not UTF-8")))?;
    print(&script)
}

/// Writes `atsprov.1` and one page per visible command into a directory.
///
/// The pages come from the clap definitions, which live in the binary; `cargo
/// xtask man` runs this rather than linking the CLI into a library.
pub(crate) fn man(dir: Option<std::ffi::OsString>) -> Outcome {
    let dir = std::path::PathBuf::from(
        dir.ok_or_else(|| Failure::Usage(anyhow!("usage: atsprov __man DIR")))?,
    );
    // The pages carry the release version only: the commit and build date
    // of `--version` would make every commit's pages differ.
    let mut command = Cli::command().version(env!("CARGO_PKG_VERSION"));
    // Building fills in each command's display name (`atsprov-plan`) and
    // usage line (`atsprov plan`), which the pages use.
    command.build();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut pages = vec![("atsprov.1".to_owned(), command.clone())];
    // `help` is clap's own; its page would say nothing `--help` does not.
    let documented = |sub: &&clap::Command| !sub.is_hide_set() && sub.get_name() != "help";
    for sub in command.get_subcommands().filter(documented) {
        let file = format!("atsprov-{}.1", sub.get_name());
        pages.push((file, sub.clone()));
    }
    for (file, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .with_context(|| format!("cannot render `{file}`"))?;
        roff.extend_from_slice(EXIT_STATUS.as_bytes());
        let path = dir.join(&file);
        std::fs::write(&path, roff)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(Exit::Success)
}

/// The exit codes, the same for every command (`src/exit.rs`).
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success: every declared connection is provisioned as declared (for \fBplan \-\-detailed\-exitcode\fR, also nothing to do).
.TP
\fB1\fR
The run finished but items failed or could not be provisioned, or the API could not be used.
.TP
\fB2\fR
Only \fBplan \-\-detailed\-exitcode\fR: changes are pending, or a conflict needs a person.
.TP
\fB3\fR
The manifest or configuration is invalid; nothing was sent to the API.
.TP
\fB64\fR
Bad command line.
.TP
\fB130\fR
Interrupted; work in flight finished and the report was written.
.SH "SEE ALSO"
The \fIdocs/\fR directory of the atsprov repository: the manifest reference, the formats and operations.
"#;

fn print(text: &str) -> Outcome {
    crate::output::stdout(text)
        .map_err(|err| Failure::Fatal(anyhow!("cannot write to stdout: {err}")))?;
    Ok(Exit::Success)
}
