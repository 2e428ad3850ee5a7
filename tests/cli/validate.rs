//! `atsprov validate`: good and bad manifests, and what a user sees for each.
