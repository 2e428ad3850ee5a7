//! One module per command.

pub(crate) mod emulator;
pub(crate) mod validate;
