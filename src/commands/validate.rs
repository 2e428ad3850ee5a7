//! `atsprov validate MANIFEST`.

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::exit::{Exit, Outcome};

pub(crate) fn run(_global: &GlobalArgs, _args: ValidateArgs) -> Outcome {
    Ok(Exit::Success)
}
