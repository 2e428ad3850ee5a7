//! `[auth]`: client credentials or a ready token, the token URL and the scopes.

use figment::value::Value;

use super::Checker;
use crate::manifest::Auth;

const AUTH_KEYS: [&str; 4] = ["token_url", "client_secret", "scopes", "access_token"];

impl Checker<'_> {
    pub(super) fn auth(&mut self, value: &Value) -> Option<Auth> {
        let dict = self.table("auth", value, &AUTH_KEYS)?;
        let token_url = dict
            .get("token_url")
            .and_then(|v| self.url("auth.token_url", v));
        let scopes = match dict.get("scopes") {
            None => Some(
                crate::manifest::DEFAULT_SCOPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            Some(v) => self.strings("auth.scopes", v).and_then(|scopes| {
                if scopes.is_empty() {
                    self.error_hint(
                        "auth.scopes",
                        v,
                        "expected at least one scope, found an empty list",
                        format!(
                            "copy the scopes from the OAuth Server-to-Server credential page of your project in the Adobe Developer Console, or leave `scopes` out for the default ({})",
                            crate::manifest::DEFAULT_SCOPES.join(", ")
                        ),
                    );
                    return None;
                }
                if let Some(i) = scopes
                    .iter()
                    .position(|s| s.trim().is_empty() || s.contains(char::is_whitespace))
                {
                    let path = format!("auth.scopes[{i}]");
                    let element = match v {
                        Value::Array(_, items) => &items[i],
                        _ => v,
                    };
                    self.error(
                        &path,
                        element,
                        "a scope must be a non-empty word without spaces",
                    );
                    None
                } else {
                    Some(scopes)
                }
            }),
        };
        let client_secret = dict.get("client_secret");
        let access_token = dict.get("access_token");
        match (client_secret, access_token) {
            (Some(secret), None) => {
                let secret = self.secret("auth.client_secret", secret);
                Some(Auth::ClientCredentials {
                    token_url: token_url?,
                    client_secret: secret?,
                    scopes: scopes?,
                })
            }
            (None, Some(token)) => {
                let secret = self.secret("auth.access_token", token)?;
                // It goes in the `Authorization` header as it is.
                if !secret.expose().bytes().all(|b| b.is_ascii_graphic()) {
                    self.error_hint(
                        "auth.access_token",
                        token,
                        "the access token contains characters that cannot be sent in an HTTP header (white space, a line break or a non-ASCII character)",
                        "an access token is one line of ASCII letters, digits and `-._~+/=`; check the variable or file it comes from",
                    );
                    return None;
                }
                Some(Auth::AccessToken(secret))
            }
            (Some(_), Some(token)) => {
                self.error_hint(
                    "auth.access_token",
                    token,
                    "`client_secret` and `access_token` are both set; exactly one way to authenticate is allowed",
                    "keep `client_secret` for unattended runs (a token expires), or `access_token` alone",
                );
                None
            }
            (None, None) => {
                self.missing(
                    "auth",
                    value,
                    "client_secret",
                    "set `client_secret = { env = \"AEP_CLIENT_SECRET\" }` (OAuth Server-to-Server) or `access_token = { env = \"AEP_ACCESS_TOKEN\" }`",
                );
                None
            }
        }
    }
}
