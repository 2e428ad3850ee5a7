//! `atsprov emulator`.

use crate::cli::EmulatorArgs;
use crate::exit::{Exit, Outcome};

pub(crate) fn run(_args: EmulatorArgs) -> Outcome {
    Ok(Exit::Success)
}
