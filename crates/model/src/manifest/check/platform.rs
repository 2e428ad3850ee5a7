//! `[platform]`: the Flow Service endpoint, the organization and the client id.

use figment::value::Value;

use super::Checker;
use crate::manifest::Platform;

const PLATFORM_KEYS: [&str; 3] = ["endpoint", "org_id", "api_key"];

impl Checker<'_> {
    pub(super) fn platform(&mut self, value: &Value) -> Option<Platform> {
        let dict = self.table("platform", value, &PLATFORM_KEYS)?;
        let endpoint = dict
            .get("endpoint")
            .and_then(|v| self.url("platform.endpoint", v));
        let org_id = match dict.get("org_id") {
            None => {
                self.missing("platform", value, "org_id", "the IMS organization, like `0123456789ABCDEF01234567@AdobeOrg`");
                None
            }
            Some(v) => self.string("platform.org_id", v).and_then(|org| {
                let prefix = org.strip_suffix("@AdobeOrg");
                // It is sent as a header: visible ASCII only.
                if prefix.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic())) {
                    Some(org.to_owned())
                } else {
                    self.error_hint(
                        "platform.org_id",
                        v,
                        format!("expected an organization id ending in `@AdobeOrg`, found `{org}`"),
                        "copy it from the Adobe Developer Console, e.g. `0123456789ABCDEF01234567@AdobeOrg`",
                    );
                    None
                }
            }),
        };
        let api_key = match dict.get("api_key") {
            None => {
                self.missing(
                    "platform",
                    value,
                    "api_key",
                    "the client id of the Developer Console project",
                );
                None
            }
            Some(v) => self.string("platform.api_key", v).and_then(|key| {
                if key.trim().is_empty() {
                    self.error_hint(
                        "platform.api_key",
                        v,
                        "expected a non-empty client id, found an empty string",
                        "the client id of the Developer Console project",
                    );
                    None
                } else if !key.trim().bytes().all(|b| b.is_ascii_graphic()) {
                    // It is sent as the `x-api-key` header.
                    self.error_hint(
                        "platform.api_key",
                        v,
                        format!(
                            "the client id `{}` has characters a client id never has (white space or non-ASCII)",
                            key.escape_debug()
                        ),
                        "copy the client id from the Developer Console project: ASCII letters and digits",
                    );
                    None
                } else {
                    Some(key.trim().to_owned())
                }
            }),
        };
        Some(Platform {
            endpoint: endpoint?,
            org_id: org_id?,
            api_key: api_key?,
        })
    }
}
