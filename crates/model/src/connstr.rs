//! Azure Storage connection strings for ATS: strict parsing and the canonical form atsprov sends.
//!
//! Errors describe what is wrong (which key, which segment) and never echo a
//! value: a connection string holds the account key, and a key pasted in the
//! wrong place must not end up on a terminal or in CI logs.

use base64::Engine as _;
use thiserror::Error;

use crate::secret::Secret;
use crate::url_policy::{self, UrlRefusal};

/// The endpoint suffix of the public Azure cloud, left out of the connection string.
pub const DEFAULT_ENDPOINT_SUFFIX: &str = "core.windows.net";

const KNOWN_KEYS: [&str; 5] = [
    "DefaultEndpointsProtocol",
    "AccountName",
    "AccountKey",
    "EndpointSuffix",
    "TableEndpoint",
];

/// Why a connection string, account name or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnStrError {
    /// The string is empty.
    #[error("the connection string is empty")]
    Empty,
    /// A segment has no `=`.
    #[error("segment {0} is not `Key=Value`")]
    NotKeyValue(usize),
    /// An empty segment between two `;`.
    #[error("segment {0} is empty (two `;` in a row)")]
    EmptySegment(usize),
    /// A key atsprov does not know; the key is shown only when it looks like a key name.
    #[error(
        "unknown key {0} (known: DefaultEndpointsProtocol, AccountName, AccountKey, EndpointSuffix, TableEndpoint)"
    )]
    UnknownKey(String),
    /// A shared access signature.
    #[error(
        "a shared access signature (SAS) connection string is not supported for ATS connections; use AccountName and AccountKey"
    )]
    Sas,
    /// A key given twice.
    #[error("key `{0}` appears more than once")]
    Duplicate(&'static str),
    /// A key with an empty value.
    #[error("key `{0}` has an empty value")]
    EmptyValue(&'static str),
    /// A required key is missing.
    #[error("key `{0}` is missing")]
    Missing(&'static str),
    /// The protocol is neither https nor http.
    #[error("`DefaultEndpointsProtocol` must be `https`")]
    Protocol,
    /// `DefaultEndpointsProtocol=http`: AEP reaches storage over https only.
    #[error(
        "`DefaultEndpointsProtocol=http` is not supported: AEP reaches storage accounts over https only"
    )]
    PlainHttp,
    /// The account name breaks Azure's rule.
    #[error("`AccountName` {0}")]
    AccountName(AccountNameError),
    /// The account key is not base64.
    #[error("`AccountKey` {0}")]
    AccountKey(AccountKeyError),
    /// The endpoint suffix is not a host name.
    #[error("`EndpointSuffix` is not a host name like `core.windows.net`")]
    EndpointSuffix,
    /// The table endpoint is not an http(s) URL.
    #[error("`TableEndpoint` is not an http or https URL")]
    TableEndpoint,
    /// The table endpoint breaks the URL policy ([`crate::url_policy`]), as
    /// `table_endpoint` would: a user or password in it, or plain http to a
    /// host that is not loopback. The refusal never holds the password.
    #[error("`TableEndpoint`: {0}")]
    TableEndpointRefused(UrlRefusal),
}

impl ConnStrError {
    /// What to do about it, when there is more to say than the usual form.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ConnStrError::Sas => Some(
                "create the connection from the account key: `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…`",
            ),
            ConnStrError::PlainHttp => Some(
                "write `DefaultEndpointsProtocol=https` or leave it out; a local Table endpoint for `verify` goes in `TableEndpoint=http://127.0.0.1:…`",
            ),
            ConnStrError::TableEndpointRefused(refusal) => Some(refusal.hint()),
            _ => None,
        }
    }
}

/// Why a storage account name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountNameError {
    /// Too short or too long.
    #[error("must be 3 to 24 characters long, found {0}")]
    Length(usize),
    /// A character other than a lowercase letter or a digit.
    #[error("may contain only lowercase letters and digits, found {0} at position {1}")]
    Character(&'static str, usize),
}

/// Why an account key was refused. Never contains the key or any of its characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountKeyError {
    /// Empty or blank.
    #[error("is empty")]
    Empty,
    /// A character outside the base64 alphabet.
    #[error("is not valid base64: invalid character at position {0}")]
    Character(usize),
    /// A length no base64 text has.
    #[error("is not valid base64: {0} characters is not a multiple of 4")]
    Length(usize),
    /// Bad padding or trailing bits.
    #[error("is not valid base64: bad padding at the end")]
    Padding,
}

/// One `;`-separated piece of a connection string, as [`segments`] reads it.
///
/// A segment without `=` carries no text: it may be a key pasted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Only white space: two `;` in a row, or after a trailing `;`.
    Blank,
    /// `Key=Value`, both trimmed; the value may be empty and may contain `=`
    /// (base64 padding), since only the first `=` separates.
    Pair {
        /// The key, as written (case kept).
        key: &'a str,
        /// The value.
        value: &'a str,
    },
    /// Text without `=`.
    Bare,
}

/// Splits a connection string into its segments, in order.
///
/// The one tokenizer of atsprov: the strict parser ([`ConnectionString::parse`]),
/// transport's scrubbing of server answers and the emulator's masking all read
/// connection strings through it, so they cannot disagree on where a key is.
pub fn segments(text: &str) -> impl Iterator<Item = Segment<'_>> {
    text.split(';').map(|raw| {
        if raw.trim().is_empty() {
            return Segment::Blank;
        }
        match raw.split_once('=') {
            Some((key, value)) => Segment::Pair {
                key: key.trim(),
                value: value.trim(),
            },
            None => Segment::Bare,
        }
    })
}

/// Checks Azure's rule for storage account names: 3–24 lowercase letters and digits.
pub fn check_account_name(name: &str) -> Result<(), AccountNameError> {
    let len = name.chars().count();
    for (i, c) in name.chars().enumerate() {
        if !(c.is_ascii_lowercase() || c.is_ascii_digit()) {
            let what = if c.is_ascii_uppercase() {
                "an uppercase letter"
            } else if c.is_whitespace() {
                "white space"
            } else {
                "another character"
            };
            return Err(AccountNameError::Character(what, i + 1));
        }
    }
    if !(3..=24).contains(&len) {
        return Err(AccountNameError::Length(len));
    }
    Ok(())
}

/// Checks that an account key is standard, padded base64 (Azure's keys are 88 characters).
pub fn check_account_key(key: &str) -> Result<(), AccountKeyError> {
    if key.trim().is_empty() {
        return Err(AccountKeyError::Empty);
    }
    if let Some(pos) = key
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
    {
        return Err(AccountKeyError::Character(pos + 1));
    }
    if !key.len().is_multiple_of(4) {
        return Err(AccountKeyError::Length(key.len()));
    }
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(_) => Ok(()),
        // `=` in the middle shows up as an invalid byte: report its position, not the byte.
        Err(base64::DecodeError::InvalidByte(offset, _)) => {
            Err(AccountKeyError::Character(offset + 1))
        }
        Err(_) => Err(AccountKeyError::Padding),
    }
}

/// Checks an endpoint suffix: a DNS name like `core.windows.net`, no scheme, no path.
pub fn check_endpoint_suffix(suffix: &str) -> bool {
    let labels: Vec<&str> = suffix.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A parsed account-key connection string.
///
/// Its protocol is always https: `DefaultEndpointsProtocol=http` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The storage account.
    pub account_name: String,
    /// The account key.
    pub account_key: Secret,
    /// The endpoint suffix; `None` means [`DEFAULT_ENDPOINT_SUFFIX`].
    pub endpoint_suffix: Option<String>,
    /// An explicit Table endpoint (e.g. Azurite's), for the key check only:
    /// it passed [`url_policy::check_endpoint`], and [`ConnectionString::to_secret`]
    /// leaves it out.
    pub table_endpoint: Option<url::Url>,
}

impl ConnectionString {
    /// A connection string for an account and key, https, on the given suffix.
    pub fn new(account_name: &str, account_key: Secret, endpoint_suffix: Option<&str>) -> Self {
        Self {
            account_name: account_name.to_owned(),
            account_key,
            endpoint_suffix: endpoint_suffix
                .filter(|s| *s != DEFAULT_ENDPOINT_SUFFIX)
                .map(str::to_owned),
            table_endpoint: None,
        }
    }

    /// Parses strictly: known keys only (exact case), no duplicates, no empty
    /// values, protocol `https` (when given), `AccountName` and `AccountKey`
    /// present, a `TableEndpoint` that passes [`url_policy::check_endpoint`] (the rule
    /// of `table_endpoint`). A single trailing `;` is allowed, as the Azure
    /// portal writes one.
    pub fn parse(text: &str) -> Result<Self, ConnStrError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ConnStrError::Empty);
        }
        let body = text.strip_suffix(';').unwrap_or(text);
        let is_sas = |segment: Segment<'_>| matches!(segment, Segment::Pair { key, .. } if key.eq_ignore_ascii_case("SharedAccessSignature"));
        if segments(body).any(is_sas) {
            return Err(ConnStrError::Sas);
        }
        let mut values: [Option<&str>; 5] = [None; 5];
        for (i, segment) in segments(body).enumerate() {
            let n = i + 1;
            let (key, value) = match segment {
                Segment::Blank => return Err(ConnStrError::EmptySegment(n)),
                Segment::Bare => return Err(ConnStrError::NotKeyValue(n)),
                Segment::Pair { key, value } => (key, value),
            };
            let Some(k) = KNOWN_KEYS.iter().position(|&known| known == key) else {
                return Err(ConnStrError::UnknownKey(describe_key(key)));
            };
            if values[k].is_some() {
                return Err(ConnStrError::Duplicate(KNOWN_KEYS[k]));
            }
            if value.is_empty() {
                return Err(ConnStrError::EmptyValue(KNOWN_KEYS[k]));
            }
            values[k] = Some(value);
        }
        let [
            protocol,
            account_name,
            account_key,
            endpoint_suffix,
            table_endpoint,
        ] = values;
        match protocol {
            None | Some("https") => {}
            Some("http") => return Err(ConnStrError::PlainHttp),
            Some(_) => return Err(ConnStrError::Protocol),
        }
        let account_name = account_name.ok_or(ConnStrError::Missing("AccountName"))?;
        check_account_name(account_name).map_err(ConnStrError::AccountName)?;
        let account_key = account_key.ok_or(ConnStrError::Missing("AccountKey"))?;
        check_account_key(account_key).map_err(ConnStrError::AccountKey)?;
        if let Some(suffix) = endpoint_suffix
            && !check_endpoint_suffix(suffix)
        {
            return Err(ConnStrError::EndpointSuffix);
        }
        let table_endpoint = match table_endpoint {
            None => None,
            Some(raw) => match url::Url::parse(raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {
                    url_policy::check_endpoint(&url).map_err(ConnStrError::TableEndpointRefused)?;
                    Some(url)
                }
                _ => return Err(ConnStrError::TableEndpoint),
            },
        };
        Ok(Self {
            account_name: account_name.to_owned(),
            account_key: Secret::new(account_key),
            endpoint_suffix: endpoint_suffix
                .filter(|s| *s != DEFAULT_ENDPOINT_SUFFIX)
                .map(str::to_owned),
            table_endpoint,
        })
    }

    /// The canonical text, the one sent to AEP:
    /// `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…`, then
    /// `EndpointSuffix=…` when not the default. Never the `TableEndpoint`
    /// (only the key check uses it). Canonical, so that the same credentials
    /// always give the same fingerprint.
    pub fn to_secret(&self) -> Secret {
        let key = self.account_key.expose();
        let mut text = String::with_capacity(96 + self.account_name.len() + key.len());
        for part in [
            "DefaultEndpointsProtocol=https",
            ";AccountName=",
            &self.account_name,
            ";AccountKey=",
            key,
        ] {
            text.push_str(part);
        }
        if let Some(suffix) = &self.endpoint_suffix {
            text.push_str(";EndpointSuffix=");
            text.push_str(suffix);
        }
        Secret::new(text)
    }

    /// The endpoint suffix in effect.
    pub fn endpoint_suffix(&self) -> &str {
        self.endpoint_suffix
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT_SUFFIX)
    }
}

/// A key name as it may be shown: only when it looks like a key name, since a
/// key pasted without `AccountKey=` splits at its own `=` padding.
fn describe_key(key: &str) -> String {
    if let Some(known) = KNOWN_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return format!("`{key}` (keys are case-sensitive: did you mean `{known}`?)");
    }
    if !key.is_empty() && key.len() <= 32 && key.bytes().all(|b| b.is_ascii_alphabetic()) {
        format!("`{key}`")
    } else {
        "(not shown)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4";

    #[test]
    fn parse_table() {
        use ConnStrError as E;
        let ok = |name: &str, suffix: Option<&str>| {
            Ok::<_, ConnStrError>((name.to_owned(), suffix.map(str::to_owned)))
        };
        type Parsed = Result<(String, Option<String>), ConnStrError>;
        let cases: Vec<(String, Parsed)> = vec![
            (
                format!("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY}"),
                ok("acct1", None),
            ),
            (
                format!("AccountName=acct1;AccountKey={KEY};"),
                ok("acct1", None),
            ),
            (
                format!("AccountName=devstoreaccount1;AccountKey={KEY};TableEndpoint=http://127.0.0.1:10002/devstoreaccount1"),
                ok("devstoreaccount1", None),
            ),
            (
                format!("AccountName=acct1;AccountKey={KEY};TableEndpoint=https://acct1.table.example.com/"),
                ok("acct1", None),
            ),
            (
                format!("AccountName=acct1;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"),
                ok("acct1", Some("core.chinacloudapi.cn")),
            ),
            (
                format!("AccountName=acct1;AccountKey={KEY};EndpointSuffix=core.windows.net"),
                ok("acct1", None),
            ),
            ("".into(), Err(E::Empty)),
            ("   ".into(), Err(E::Empty)),
            (format!("AccountName=acct1;;AccountKey={KEY}"), Err(E::EmptySegment(2))),
            (format!("AccountName=acct1;{KEY}=="), Err(E::UnknownKey("(not shown)".into()))),
            ("AccountName=acct1;garbage".into(), Err(E::NotKeyValue(2))),
            (format!("AccountName=acct1;AccountKey={KEY};Foo=bar"), Err(E::UnknownKey("`Foo`".into()))),
            (
                format!("accountname=acct1;AccountKey={KEY}"),
                Err(E::UnknownKey("`accountname` (keys are case-sensitive: did you mean `AccountName`?)".into())),
            ),
            (format!("AccountName=a1b;AccountName=a1b;AccountKey={KEY}"), Err(E::Duplicate("AccountName"))),
            (format!("AccountName=;AccountKey={KEY}"), Err(E::EmptyValue("AccountName"))),
            (format!("DefaultEndpointsProtocol=ftp;AccountName=acct1;AccountKey={KEY}"), Err(E::Protocol)),
            (format!("DefaultEndpointsProtocol=HTTPS;AccountName=acct1;AccountKey={KEY}"), Err(E::Protocol)),
            (format!("AccountKey={KEY}"), Err(E::Missing("AccountName"))),
            ("AccountName=acct1".into(), Err(E::Missing("AccountKey"))),
            (
                "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020&sig=abc".into(),
                Err(E::Sas),
            ),
            (
                "TableEndpoint=https://a.table.core.windows.net/;SharedAccessSignature=sv=2020&sig=abc".into(),
                Err(E::Sas),
            ),
            (
                format!("AccountName=Acct1;AccountKey={KEY}"),
                Err(E::AccountName(AccountNameError::Character("an uppercase letter", 1))),
            ),
            (
                format!("AccountName=ab;AccountKey={KEY}"),
                Err(E::AccountName(AccountNameError::Length(2))),
            ),
            (
                "AccountName=acct1;AccountKey=abc!def=".into(),
                Err(E::AccountKey(AccountKeyError::Character(4))),
            ),
            (
                "AccountName=acct1;AccountKey=abcde".into(),
                Err(E::AccountKey(AccountKeyError::Length(5))),
            ),
            (format!("AccountName=acct1;AccountKey={KEY};EndpointSuffix=https://x"), Err(E::EndpointSuffix)),
            (format!("AccountName=acct1;AccountKey={KEY};TableEndpoint=not a url"), Err(E::TableEndpoint)),
            // AEP reaches storage over https only: http is refused, never passed on.
            (format!("DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey={KEY}"), Err(E::PlainHttp)),
            (
                format!("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};TableEndpoint=http://127.0.0.1:10002/devstoreaccount1"),
                Err(E::PlainHttp),
            ),
            // `TableEndpoint` follows the rule of `table_endpoint` (the one URL policy).
            (
                format!("AccountName=saleseu;AccountKey={KEY};TableEndpoint=http://u:SECRETPW@10.1.1.1/saleseu"),
                Err(E::TableEndpointRefused(UrlRefusal::Credentials)),
            ),
            (
                format!("AccountName=saleseu;AccountKey={KEY};TableEndpoint=https://u:SECRETPW@saleseu.table.core.windows.net/"),
                Err(E::TableEndpointRefused(UrlRefusal::Credentials)),
            ),
            (
                format!("AccountName=saleseu;AccountKey={KEY};TableEndpoint=http://TOKEN@127.0.0.1:10002/saleseu"),
                Err(E::TableEndpointRefused(UrlRefusal::Credentials)),
            ),
            (
                format!("AccountName=saleseu;AccountKey={KEY};TableEndpoint=http://10.1.1.1/saleseu"),
                Err(E::TableEndpointRefused(UrlRefusal::PlainHttp { host: "10.1.1.1".into() })),
            ),
            (
                format!("AccountName=saleseu;AccountKey={KEY};TableEndpoint=http://saleseu.table.core.windows.net"),
                Err(E::TableEndpointRefused(UrlRefusal::PlainHttp {
                    host: "saleseu.table.core.windows.net".into(),
                })),
            ),
        ];
        for (input, expected) in cases {
            let got = ConnectionString::parse(&input)
                .map(|c| (c.account_name.clone(), c.endpoint_suffix.clone()));
            assert_eq!(got, expected, "input: {input}");
            if let Err(err) = ConnectionString::parse(&input) {
                let said = format!("{err} {} {err:?}", err.hint().unwrap_or_default());
                for secret in [KEY, "SECRETPW", "TOKEN"] {
                    assert!(!said.contains(secret), "{said}");
                }
            }
        }
    }

    #[test]
    fn canonical_form_round_trips() {
        for input in [
            format!("AccountKey={KEY};AccountName=acct1"),
            format!("AccountName=acct1;AccountKey={KEY};EndpointSuffix=core.usgovcloudapi.net"),
        ] {
            let parsed = ConnectionString::parse(&input).unwrap();
            let canonical = parsed.to_secret();
            assert!(
                canonical
                    .expose()
                    .starts_with("DefaultEndpointsProtocol=https;")
            );
            assert_eq!(ConnectionString::parse(canonical.expose()).unwrap(), parsed);
        }
        let built = ConnectionString::new("acct1", Secret::new(KEY), Some("core.windows.net"));
        assert_eq!(
            built.to_secret().expose(),
            format!("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY}")
        );
        let other = ConnectionString::new("acct1", Secret::new(KEY), Some("core.chinacloudapi.cn"));
        assert!(
            other
                .to_secret()
                .expose()
                .ends_with(";EndpointSuffix=core.chinacloudapi.cn")
        );
    }

    #[test]
    fn the_table_endpoint_is_kept_for_the_key_check_and_never_sent() {
        let parsed = ConnectionString::parse(&format!(
            "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey={KEY};TableEndpoint=http://127.0.0.1:10002/devstoreaccount1"
        ))
        .unwrap();
        assert_eq!(
            parsed.table_endpoint.as_ref().map(url::Url::as_str),
            Some("http://127.0.0.1:10002/devstoreaccount1")
        );
        assert_eq!(
            parsed.to_secret().expose(),
            format!("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey={KEY}")
        );
    }

    #[test]
    fn account_keys() {
        assert_eq!(check_account_key(KEY), Ok(()));
        assert_eq!(check_account_key(""), Err(AccountKeyError::Empty));
        assert_eq!(
            check_account_key("ab=c"),
            Err(AccountKeyError::Character(3))
        );
        assert_eq!(check_account_key("abc"), Err(AccountKeyError::Length(3)));
        assert_eq!(check_account_key("ab=="), Err(AccountKeyError::Padding));
    }

    #[test]
    fn account_names() {
        assert_eq!(check_account_name("abc"), Ok(()));
        assert_eq!(check_account_name("a".repeat(24).as_str()), Ok(()));
        assert_eq!(
            check_account_name("a".repeat(25).as_str()),
            Err(AccountNameError::Length(25))
        );
        assert_eq!(
            check_account_name("sales-eu"),
            Err(AccountNameError::Character("another character", 6))
        );
    }

    #[test]
    fn the_tokenizer_keeps_padding_and_hides_bare_text() {
        let got: Vec<Segment<'_>> = segments(" AccountName = a ;;AccountKey=YQ==;bare; ").collect();
        assert_eq!(
            got,
            [
                Segment::Pair {
                    key: "AccountName",
                    value: "a"
                },
                Segment::Blank,
                Segment::Pair {
                    key: "AccountKey",
                    value: "YQ=="
                },
                Segment::Bare,
                Segment::Blank,
            ]
        );
    }
}
