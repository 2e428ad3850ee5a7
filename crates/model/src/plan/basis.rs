//! The basis of a plan: digests of what it was made from, so that a saved
//! plan can tell later whether the manifest or the live connections changed.

use schemars::JsonSchema;
use serde::Serialize;

use super::Options;
use crate::desired::DesiredConnection;
use crate::wire::Connection;

/// What a plan was made from, as digests: enough to tell, later, whether
/// the manifest's desired state or the live connections changed since (a
/// saved plan is carried out only when neither did). No secret goes in:
/// credentials enter only through their fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
pub struct Basis {
    /// SHA-256 of the desired state and the plan's options (prune, owner, sandboxes).
    pub manifest: String,
    /// SHA-256 of every live connection seen: sandbox, id, etag, name, state, spec.
    pub live: String,
}

impl Basis {
    /// The basis of a plan of `desired` whose live sandboxes went through `live`.
    pub(super) fn finish(
        desired: &[DesiredConnection],
        options: &Options<'_>,
        live: LiveDigest,
    ) -> Self {
        let mut m = Digest::new("atsprov.plan.manifest/v1");
        m.field(if options.prune { "prune" } else { "keep" });
        m.field(options.owner.unwrap_or(""));
        m.field(&options.sandboxes.len().to_string());
        for sandbox in options.sandboxes {
            m.field(sandbox);
        }
        m.field(&options.targets.len().to_string());
        for target in options.targets {
            m.field(target);
        }
        for d in desired {
            m.field(&d.sandbox);
            m.field(&d.name);
            m.field(&d.description);
            m.field(d.fingerprint.as_str());
            m.field(if d.adopt { "adopt" } else { "" });
            m.field(d.owner.as_deref().unwrap_or(""));
        }
        Self {
            manifest: m.finish(),
            live: live.0.finish(),
        }
    }
}

/// The live half of a basis, fed one sandbox at a time in ascending order
/// of sandbox name (the order of a `BTreeMap` of them), so that a plan
/// need not hold every sandbox's listing at once.
pub(super) struct LiveDigest(Digest);

impl LiveDigest {
    pub(super) fn new() -> Self {
        Self(Digest::new("atsprov.plan.live/v1"))
    }

    /// Every live connection of `sandbox`: sandbox, id, etag, name, state, spec.
    pub(super) fn sandbox(&mut self, sandbox: &str, connections: &[Connection]) {
        let l = &mut self.0;
        let mut seen: Vec<&Connection> = connections.iter().collect();
        seen.sort_by(|a, b| (&a.id, &a.etag).cmp(&(&b.id, &b.etag)));
        l.field(sandbox);
        l.field(&seen.len().to_string());
        for c in seen {
            l.field(&c.id);
            l.field(&c.etag);
            l.field(&c.name);
            l.field(c.description.as_deref().unwrap_or("\0none"));
            l.field(c.state.as_deref().unwrap_or(""));
            l.field(&c.connection_spec.id);
        }
    }
}

/// SHA-256 over length-prefixed fields, so that no two inputs run together.
struct Digest(sha2::Sha256);

impl Digest {
    fn new(tag: &str) -> Self {
        let mut d = Self(sha2::Sha256::default());
        d.field(tag);
        d
    }

    fn field(&mut self, value: &str) {
        use sha2::Digest as _;
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
    }

    fn finish(self) -> String {
        use sha2::Digest as _;
        let bytes = self.0.finalize();
        let mut hex = String::with_capacity(71);
        hex.push_str("sha256:");
        for b in bytes {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        hex
    }
}
