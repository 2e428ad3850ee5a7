//! Azure Storage "Shared Key Lite" for the Table service: how `verify` proves
//! an account key against the account's own Table endpoint, and how the
//! emulator checks it. Pure functions: no clock, no network.
//!
//! ```text
//! StringToSign  = x-ms-date + "\n" + "/" + account + request path
//! Authorization = "SharedKeyLite " + account + ":" + base64(HMAC-SHA256(base64decode(key), StringToSign))
//! ```
//!
//! For a path-style endpoint (Azurite, `http://127.0.0.1:10002/devstoreaccount1`)
//! the request path already starts with the account, so it appears twice in the
//! canonical resource, as Azure's emulator expects.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::connstr::ConnectionString;
use crate::manifest::Account;
use crate::secret::Secret;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    mac(key, message).finalize().into_bytes().into()
}

fn mac(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    mac
}

/// The account key is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the account key of `{account}` is not valid base64")]
pub struct KeyError {
    account: String,
}

/// The `Authorization` header value for a Table request.
///
/// `date` is the `x-ms-date` header sent; `path` the request's URL path
/// (`/Tables`, or `/devstoreaccount1/Tables` for a path-style endpoint).
pub fn authorization(
    account: &str,
    key: &Secret,
    date: &str,
    path: &str,
) -> Result<Secret, KeyError> {
    let key = STANDARD.decode(key.expose().trim()).map_err(|_| KeyError {
        account: account.to_owned(),
    })?;
    let string_to_sign = format!("{date}\n/{account}{path}");
    let signature = STANDARD.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    Ok(Secret::new(format!("SharedKeyLite {account}:{signature}")))
}

/// Whether `given` is the `Authorization` value [`authorization`] would
/// make, compared in constant time (a server checking a signature must not
/// tell, by how fast it answers, how much of a forged one was right).
pub fn authorization_matches(
    account: &str,
    key: &Secret,
    date: &str,
    path: &str,
    given: &str,
) -> Result<bool, KeyError> {
    let key = STANDARD.decode(key.expose().trim()).map_err(|_| KeyError {
        account: account.to_owned(),
    })?;
    let Some(signature) = given
        .strip_prefix("SharedKeyLite ")
        .and_then(|rest| rest.strip_prefix(account))
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|b64| STANDARD.decode(b64).ok())
    else {
        return Ok(false);
    };
    let string_to_sign = format!("{date}\n/{account}{path}");
    Ok(mac(&key, string_to_sign.as_bytes())
        .verify_slice(&signature)
        .is_ok())
}

/// Where and with what key one manifest account's Table service is checked.
#[derive(Debug, Clone)]
pub struct TableTarget {
    /// The storage account.
    pub account: String,
    /// The Table endpoint: `table_endpoint`, the connection string's
    /// `TableEndpoint`, or `https://{account}.table.{suffix}`.
    pub endpoint: url::Url,
    /// The account key.
    pub key: Secret,
}

/// The Table endpoint and key of a manifest account.
pub fn table_target(account: &Account) -> Result<TableTarget, String> {
    let parsed = ConnectionString::parse(account.connection_string.expose()).map_err(|e| {
        format!(
            "the connection string of `{}` cannot be used: {e}",
            account.name
        )
    })?;
    let endpoint = match &account.table_endpoint {
        Some(url) => url.clone(),
        None => {
            let text = format!(
                "https://{}.table.{}",
                parsed.account_name,
                parsed.endpoint_suffix()
            );
            url::Url::parse(&text)
                .map_err(|e| format!("the Table endpoint `{text}` is not a URL: {e}"))?
        }
    };
    Ok(TableTarget {
        account: parsed.account_name,
        endpoint,
        key: parsed.account_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1, 2 and 6 of RFC 4231 (6: a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_signature_covers_date_account_and_path() {
        let key = Secret::new("a2V5LWZvci10ZXN0cw==");
        let date = "Sun, 29 Nov 2026 10:45:00 GMT";
        let one = authorization("acct", &key, date, "/Tables").unwrap();
        assert!(one.expose().starts_with("SharedKeyLite acct:"));
        for other in [
            authorization("acct", &key, "Sun, 29 Nov 2026 10:45:01 GMT", "/Tables").unwrap(),
            authorization("acct", &key, date, "/acct/Tables").unwrap(),
            authorization("acct", &Secret::new("b3RoZXIta2V5"), date, "/Tables").unwrap(),
        ] {
            assert_ne!(one.expose(), other.expose());
        }
        let err = authorization("acct", &Secret::new("not*base64"), date, "/Tables").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the account key of `acct` is not valid base64"
        );
    }

    #[test]
    fn only_the_exact_authorization_matches() {
        let key = Secret::new("a2V5LWZvci10ZXN0cw==");
        let date = "Sun, 29 Nov 2026 10:45:00 GMT";
        let good = authorization("acct", &key, date, "/Tables").unwrap();
        let matches = |given: &str| authorization_matches("acct", &key, date, "/Tables", given);
        assert_eq!(matches(good.expose()), Ok(true));
        let signature = good.expose().rsplit(':').next().unwrap().to_owned();
        let mut flipped = signature.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            format!("SharedKeyLite acct:{flipped}"),
            format!("SharedKeyLite other:{signature}"),
            format!("SharedKey acct:{signature}"),
            format!("SharedKeyLite acct:{}", &signature[..8]),
            "SharedKeyLite acct:not base64!".to_owned(),
            String::new(),
        ] {
            assert_eq!(matches(&bad), Ok(false), "{bad}");
        }
        assert!(authorization_matches("acct", &Secret::new("x*y"), date, "/Tables", "").is_err());
    }
}
