//! Tests of loading: layering, rules, secrets, and robustness against arbitrary input.

use std::path::PathBuf;

use super::*;

const KEY: &str =
    "c2VjcmV0LWtleS1ieXRlcy1zZWNyZXQta2V5LWJ5dGVzLXNlY3JldC1rZXktYnl0ZXMtc2VjcmV0LWtleS1ieXQ=";
const CLIENT_SECRET: &str = "p8e-client-secret-value";

const GOOD: &str = r#"
[platform]
org_id  = "0123456789ABCDEF01234567@AdobeOrg"
api_key = "client-id"

[auth]
client_secret = { env = "TEST_CLIENT_SECRET" }

[defaults]
sandboxes = ["prod", "dev"]

[[accounts]]
name         = "sales-eu"
account_name = "saleseu"
account_key  = { env = "TEST_KEY" }

[[accounts]]
name         = "ops"
account_name = "opsstore"
account_key  = { file = "keys/ops" }
sandboxes    = ["stage"]
description  = "Ops tables"
endpoint_suffix = "core.chinacloudapi.cn"
adopt        = true
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(manifest: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.toml"), manifest).unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let key = dir.path().join("keys/ops");
        std::fs::write(&key, format!("{KEY}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("m.toml")
    }

    fn load(&self, env: &[(&str, &str)], overrides: &Overrides) -> Result<Manifest, Diagnostics> {
        load_in(
            &self.path(),
            overrides,
            &Environment::from_pairs(env.iter().copied()),
        )
    }
}

fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![("TEST_CLIENT_SECRET", CLIENT_SECRET), ("TEST_KEY", KEY)]
}

fn errors(result: Result<Manifest, Diagnostics>) -> Vec<String> {
    match result {
        Ok(m) => panic!("expected errors, loaded {m:?}"),
        Err(d) => d
            .items
            .iter()
            .filter(|d| !d.is_warning)
            .map(|d| d.to_string())
            .collect(),
    }
}

#[test]
fn a_good_manifest_loads_with_defaults_applied() {
    let fx = Fixture::new(GOOD);
    let m = fx.load(&base_env(), &Overrides::default()).unwrap();
    assert_eq!(m.platform.endpoint.as_str(), crate::wire::DEFAULT_ENDPOINT);
    assert_eq!(m.concurrency, 8);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    match &m.auth {
        Auth::ClientCredentials {
            token_url,
            client_secret,
            scopes,
        } => {
            assert_eq!(token_url.as_str(), crate::wire::DEFAULT_TOKEN_URL);
            assert_eq!(client_secret.expose(), CLIENT_SECRET);
            assert_eq!(
                scopes,
                &[
                    "openid",
                    "AdobeID",
                    "read_organizations",
                    "additional_info.projectedProductContext",
                    "session"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let sales = &m.accounts[0];
    assert_eq!(sales.sandboxes, ["prod", "dev"]);
    assert_eq!(sales.description, DEFAULT_DESCRIPTION);
    assert_eq!(
        sales.connection_string.expose(),
        format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={KEY}")
    );
    let ops = &m.accounts[1];
    assert!(ops.adopt);
    assert_eq!(
        ops.connection_string.expose(),
        format!(
            "DefaultEndpointsProtocol=https;AccountName=opsstore;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        )
    );
    // The manifest's own order: the first account names prod before dev.
    assert_eq!(m.sandboxes(), ["prod", "dev", "stage"]);
    let desired: Vec<(String, String, usize)> = m
        .desired()
        .into_iter()
        .map(|d| (d.sandbox.to_string(), d.name.to_string(), d.account_index))
        .collect();
    assert_eq!(
        desired,
        [
            ("prod".into(), "sales-eu".into(), 0),
            ("dev".into(), "sales-eu".into(), 0),
            ("stage".into(), "ops".into(), 1),
        ]
    );
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let manifest = GOOD
        .replace("[defaults]\n", "[defaults]\nconcurrency = 4\n")
        .replace(
            "[platform]\n",
            "[platform]\nendpoint = \"https://file.example/flowservice\"\n",
        );
    let fx = Fixture::new(&manifest);
    let m = fx.load(&base_env(), &Overrides::default()).unwrap();
    assert_eq!(
        m.platform.endpoint.as_str(),
        "https://file.example/flowservice"
    );
    assert_eq!(m.concurrency, 4);

    let mut env = base_env();
    env.push((
        "ATSPROV_PLATFORM__ENDPOINT",
        "http://127.0.0.1:8080/data/foundation/flowservice",
    ));
    env.push(("ATSPROV_DEFAULTS__CONCURRENCY", "16"));
    env.push(("ATSPROV_DEFAULTS__MAX_DELETES", "3"));
    env.push(("ATSPROV_PLATFORM__API_KEY", "0042"));
    // A secret variable without `__` is not a layer key.
    env.push(("ATSPROV_DEMO_ACCOUNT_KEY", KEY));
    let m = fx.load(&env, &Overrides::default()).unwrap();
    assert_eq!(
        m.platform.endpoint.as_str(),
        "http://127.0.0.1:8080/data/foundation/flowservice"
    );
    assert_eq!(m.concurrency, 16);
    assert_eq!(m.max_deletes, 3);
    assert_eq!(m.platform.api_key, "0042");

    let m = fx
        .load(
            &env,
            &Overrides {
                concurrency: Some(3),
                ..Overrides::default()
            },
        )
        .unwrap();
    assert_eq!(m.concurrency, 3);
}

#[test]
fn errors_name_the_environment_variable_or_flag_they_came_from() {
    let fx = Fixture::new(GOOD);
    let mut env = base_env();
    env.push(("ATSPROV_AUTH__TOKEN_URL", "http://ims.example/token"));
    env.push(("ATSPROV_PLATFORM__ENDPIONT", "https://x.example"));
    let errs = errors(fx.load(
        &env,
        &Overrides {
            concurrency: Some(0),
            ..Overrides::default()
        },
    ));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs.iter().any(|e| e.contains("`auth.token_url`")
        && e.contains("--> environment variable ATSPROV_AUTH__TOKEN_URL")));
    assert!(errs.iter().any(|e| e.contains("unknown key `endpiont`")
        && e.contains("ATSPROV_PLATFORM__ENDPIONT")
        && e.contains("did you mean `endpoint`?")));
    assert!(errs.iter().any(|e| e.contains("`defaults.concurrency`")
        && e.contains("found 0")
        && e.contains("--> command-line flag --concurrency")));
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let manifest = r#"[platform]
org_id = "12345"
api_key = ""
[auth]
client_secret = { env = "UNSET_VAR" }
[[accounts]]
name = "a"
acount_name = "x"
account_key = { env = "TEST_KEY" }
[[accounts]]
name = "b"
account_name = "Bad_Name"
account_key = "not base64!"
sandboxes = ["Prod"]
"#;
    let fx = Fixture::new(manifest);
    let result = fx.load(&base_env(), &Overrides::default());
    let diagnostics = result.unwrap_err();
    let lines: Vec<(Option<usize>, bool)> = diagnostics
        .items
        .iter()
        .map(|d| match &d.location {
            Location::File { line, .. } => (*line, d.is_warning),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        [
            (Some(2), false),  // org_id
            (Some(3), false),  // api_key
            (Some(5), false),  // UNSET_VAR
            (Some(6), false),  // accounts[0] misses account_name
            (Some(8), false),  // acount_name
            (Some(12), false), // Bad_Name
            (Some(13), true),  // literal secret
            (Some(13), false), // not base64
            (Some(14), false), // Prod
        ],
        "{diagnostics}"
    );
    let text = diagnostics.to_string();
    assert!(text.contains("did you mean `account_name`?"), "{text}");
    assert!(!text.contains("not base64!"), "{text}");
}

#[test]
fn a_duplicate_of_an_account_with_an_error_is_reported_with_it() {
    let manifest = r#"[platform]
org_id = "0123456789ABCDEF01234567@AdobeOrg"
api_key = "client-id"
[auth]
client_secret = { env = "TEST_CLIENT_SECRET" }
[[accounts]]
name = "sales-eu"
account_name = "Sales_EU"
account_key = { env = "TEST_KEY" }
sandboxes = ["prod"]
[[accounts]]
name = "sales-eu"
account_name = "saleseu"
account_key = { env = "TEST_KEY" }
sandboxes = ["prod"]
"#;
    let fx = Fixture::new(manifest);
    let errors = errors(fx.load(&base_env(), &Overrides::default()));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("Sales_EU"), "{errors:?}");
    assert!(
        errors[1].contains("`sales-eu` is declared twice in sandbox `prod`"),
        "{errors:?}"
    );
}

#[test]
fn values_sent_as_headers_are_checked_by_validate() {
    let manifest = r#"[platform]
org_id = "DÉMO0123@AdobeOrg"
api_key = "é-client"
[auth]
access_token = { env = "TEST_TOKEN" }
[[accounts]]
name = "sales-eu"
account_name = "saleseu"
account_key = { env = "TEST_KEY" }
sandboxes = ["prod"]
"#;
    let fx = Fixture::new(manifest);
    let mut env = base_env();
    env.push(("TEST_TOKEN", "eyJ0eXAi OiJKV1Qi\nx"));
    let errors = errors(fx.load(&env, &Overrides::default()));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("platform.org_id"), "{errors:#?}");
    assert!(errors[1].contains("platform.api_key"), "{errors:#?}");
    assert!(
        errors[2].contains("auth.access_token") && errors[2].contains("HTTP header"),
        "{errors:#?}"
    );
    assert!(!errors[2].contains("eyJ0eXAi"), "the token is not shown");
}

#[test]
fn a_secret_given_whole_in_the_environment_replaces_the_files() {
    let fx = Fixture::new(GOOD);
    std::fs::write(fx.dir.path().join("keys/cs"), "secret-from-a-file\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(fx.dir.path().join("keys/cs"), mode).unwrap();
    }
    let client_secret = |m: Manifest| match m.auth {
        Auth::ClientCredentials { client_secret, .. } => client_secret.expose().to_owned(),
        Auth::AccessToken(_) => panic!("client credentials expected"),
    };
    // The file says `{ env = … }`; the variable says `{ file = … }`: the variable wins whole.
    let mut env = base_env();
    env.push(("ATSPROV_AUTH__CLIENT_SECRET", r#"{ file = "keys/cs" }"#));
    let m = fx.load(&env, &Overrides::default()).unwrap();
    assert_eq!(client_secret(m), "secret-from-a-file");

    // A table whose variable is unset is located at the variable that gave it.
    let mut env = base_env();
    env.push(("ATSPROV_AUTH__CLIENT_SECRET", r#"{ env = "NOPE" }"#));
    let diagnostics = fx.load(&env, &Overrides::default()).unwrap_err();
    let text = diagnostics.to_string();
    assert!(
        text.contains("NOPE") && text.contains("ATSPROV_AUTH__CLIENT_SECRET"),
        "{text}"
    );

    // A value that starts with `{` but is no table is an error, never the secret itself.
    for broken in [r#"{ file = "keys/cs" "#, "{env="] {
        let mut env = base_env();
        env.push(("ATSPROV_AUTH__CLIENT_SECRET", broken));
        let errors = errors(fx.load(&env, &Overrides::default()));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("ATSPROV_AUTH__CLIENT_SECRET")
                && errors[0].contains("starts with `{` but is not a table"),
            "{errors:#?}"
        );
    }
}

#[test]
fn an_endpoint_with_a_query_is_refused_without_showing_it() {
    let manifest = GOOD.replacen(
        "account_key  = { env = \"TEST_KEY\" }\n",
        "account_key  = { env = \"TEST_KEY\" }\ntable_endpoint = \"https://saleseu.table.core.windows.net/?sv=2022&sig=SECRETSIG\"\n",
        1,
    );
    let fx = Fixture::new(&manifest);
    let diagnostics = fx.load(&base_env(), &Overrides::default()).unwrap_err();
    let text = diagnostics.to_string();
    assert!(
        text.contains("accounts[0].table_endpoint") && text.contains("query"),
        "{text}"
    );
    assert!(!text.contains("SECRETSIG"), "{text}");
}

#[test]
fn no_secret_reaches_debug_or_diagnostics() {
    let manifest = GOOD.replace(
        "client_secret = { env = \"TEST_CLIENT_SECRET\" }",
        &format!("client_secret = \"{CLIENT_SECRET}\""),
    );
    let fx = Fixture::new(&manifest);
    let m = fx.load(&base_env(), &Overrides::default()).unwrap();
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    let shown = format!(
        "{m:?} {:?} {}",
        m.desired(),
        Diagnostics {
            items: m.warnings.clone()
        }
    );
    for secret in [KEY, CLIENT_SECRET, &KEY[..20]] {
        assert!(!shown.contains(secret), "{shown}");
    }

    // Malformed connection strings holding the key.
    let sales = "account_name = \"saleseu\"\naccount_key  = { env = \"TEST_KEY\" }";
    assert!(GOOD.contains(sales));
    for (cs, expected) in [
        (
            format!("AccountName=saleseu;AccountKey={KEY};{KEY}"),
            "unknown key (not shown)",
        ),
        (
            format!("AccountName=saleseu;{}", KEY.trim_end_matches('=')),
            "segment 2 is not `Key=Value`",
        ),
        (
            format!("AccountName=saleseu;AccountKey={KEY}!"),
            "invalid character at position 89",
        ),
    ] {
        let bad = GOOD.replace(sales, &format!("connection_string = \"{cs}\""));
        let fx = Fixture::new(&bad);
        let text = fx
            .load(&base_env(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains(&KEY[..20]), "{text}");
    }
}

#[cfg(unix)]
#[test]
fn secret_files_readable_by_others_get_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fixture::new(GOOD);
    let key = fx.dir.path().join("keys/ops");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let m = fx.load(&base_env(), &Overrides::default()).unwrap();
    assert_eq!(m.warnings.len(), 1);
    assert!(
        m.warnings[0]
            .to_string()
            .contains("readable by group or others")
    );
}

#[test]
fn unreadable_inputs_are_diagnostics() {
    let fx = Fixture::new(GOOD);
    let env = Environment::from_pairs(base_env());
    let cases: Vec<(PathBuf, &str)> = vec![
        (fx.dir.path().join("absent.toml"), "no such file"),
        (fx.dir.path().join("keys"), "is a directory"),
    ];
    for (path, expected) in cases {
        let text = load_in(&path, &Overrides::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(text.contains(expected), "{text}");
    }
    for (bytes, expected) in [
        (&b""[..], "the manifest is empty"),
        (b"  \n\n", "the manifest is empty"),
        (b"[platform]\norg_id = \"\xff\"\n", "not valid UTF-8"),
        (b"this is not toml", "not valid TOML"),
        (b"<?xml version=\"1.0\"?>", "not valid TOML"),
    ] {
        std::fs::write(fx.path(), bytes).unwrap();
        let text = fx
            .load(&base_env(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_at_its_place() {
    let fx = Fixture::new(GOOD);
    let deep_array = format!(
        "{GOOD}\n[extra]\nx = {}{}\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    let dotted: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let deep_tables = format!("{GOOD}\n[{}]\nx = 1\n", dotted.join("."));
    for (text, line) in [(deep_array, ":27:"), (deep_tables, ":26:")] {
        std::fs::write(fx.path(), text).unwrap();
        let err = fx
            .load(&base_env(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nest deeper than 32 levels"), "{err}");
        assert!(err.contains(line), "{err}");
    }
    // Far deeper: toml_edit's own limit answers first; still a diagnostic.
    let dotted: Vec<String> = (0..20_000).map(|i| format!("k{i}")).collect();
    std::fs::write(fx.path(), format!("{GOOD}\n[{}]\n", dotted.join("."))).unwrap();
    let err = fx.load(&base_env(), &Overrides::default()).unwrap_err();
    assert_eq!(err.error_count(), 1);
    // The environment: keys and values.
    std::fs::write(fx.path(), GOOD).unwrap();
    let deep_key = format!("ATSPROV_{}", ["A"; 40].join("__"));
    let deep_value = "[".repeat(5000);
    for (name, value) in [
        (deep_key.as_str(), "1"),
        ("ATSPROV_AUTH__SCOPES", deep_value.as_str()),
        (
            "ATSPROV_DEFAULTS__DESCRIPTION",
            "{ a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] }",
        ),
    ] {
        let mut env = base_env();
        env.push((name, value));
        let err = fx
            .load(&env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("environment variable {name}")),
            "{err}"
        );
        assert!(err.contains("nests deeper than 32 levels"), "{err}");
    }
    // Quoted brackets do not count, and a shallow list is fine.
    let mut env = base_env();
    env.push((
        "ATSPROV_AUTH__SCOPES",
        "[\"openid\", \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]",
    ));
    let m = fx.load(&env, &Overrides::default()).unwrap();
    let Auth::ClientCredentials { scopes, .. } = &m.auth else {
        panic!("client credentials expected");
    };
    assert_eq!(scopes.len(), 2);
}

/// The loader takes exactly the URLs the transport sends to: every URL key
/// (`platform.endpoint`, `auth.token_url`, `table_endpoint`) goes through
/// `url_policy`.
#[test]
fn every_url_key_follows_the_one_url_policy() {
    let cases = [
        ("https://x.example/p", true),
        ("http://localhost.:1/p", true),
        ("http://[::ffff:127.0.0.1]:1/p", true),
        ("http://[::1]:1/p", true),
        ("http://127.0.0.2:1/p", true),
        ("http://10.0.0.1/p", false),
        ("http://app.localhost/p", false),
        ("http://localhost.example.com/p", false),
        ("http://0.0.0.0/p", false),
    ];
    for (url, accepted) in cases {
        assert_eq!(
            crate::url_policy::check_endpoint(&url::Url::parse(url).unwrap()).is_ok(),
            accepted,
            "{url}"
        );
        let manifest = GOOD.replacen(
            "account_key  = { env = \"TEST_KEY\" }\n",
            &format!("account_key  = {{ env = \"TEST_KEY\" }}\ntable_endpoint = \"{url}\"\n"),
            1,
        );
        let fx = Fixture::new(&manifest);
        let mut env = base_env();
        env.push(("ATSPROV_PLATFORM__ENDPOINT", url));
        env.push(("ATSPROV_AUTH__TOKEN_URL", url));
        let result = fx.load(&env, &Overrides::default());
        if accepted {
            result.unwrap();
        } else {
            let errs = errors(result);
            assert_eq!(errs.len(), 3, "{url}: {errs:#?}");
            assert!(errs.iter().all(|e| e.contains("loopback")), "{errs:#?}");
        }
    }
}

/// A connection string's `TableEndpoint` plays the role of `table_endpoint`:
/// accepted and refused alike, told the same refusal and hint, with the
/// account and the variable or file the string came from, never the key
/// or the password; and it is never part of the string sent to AEP.
#[test]
fn a_connection_string_table_endpoint_is_held_to_the_table_endpoint_rule() {
    let cases = [
        ("https://saleseu.table.example.com/", true),
        ("http://127.0.0.1:10002/saleseu", true),
        ("http://localhost:10002/saleseu", true),
        ("http://u:SECRETPW@10.1.1.1/saleseu", false),
        ("https://u:SECRETPW@saleseu.table.core.windows.net/", false),
        ("http://SECRETPW@127.0.0.1:10002/saleseu", false),
        ("http://10.1.1.1/saleseu", false),
        ("http://saleseu.table.core.windows.net/", false),
        ("http://app.localhost/saleseu", false),
    ];
    let sales = "account_name = \"saleseu\"\naccount_key  = { env = \"TEST_KEY\" }";
    assert!(GOOD.contains(sales));
    for (url, accepted) in cases {
        // The same URL, once as `table_endpoint`, once in the connection string.
        let as_key =
            Fixture::new(&GOOD.replacen(sales, &format!("{sales}\ntable_endpoint = \"{url}\""), 1));
        let from_env =
            Fixture::new(&GOOD.replacen(sales, "connection_string = { env = \"TEST_CS\" }", 1));
        let cs = format!("AccountName=saleseu;AccountKey={KEY};TableEndpoint={url}");
        let mut env = base_env();
        env.push(("TEST_CS", &cs));
        let by_key = as_key.load(&base_env(), &Overrides::default());
        let by_cs = from_env.load(&env, &Overrides::default());
        if accepted {
            let (by_key, by_cs) = (by_key.unwrap(), by_cs.unwrap());
            assert_eq!(by_cs.accounts[0], by_key.accounts[0], "{url}");
            assert_eq!(
                by_cs.accounts[0]
                    .table_endpoint
                    .as_ref()
                    .map(url::Url::as_str),
                Some(url),
            );
            assert_eq!(
                by_cs.accounts[0].connection_string.expose(),
                format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={KEY}"),
                "the endpoint is for the key check only, never sent to AEP"
            );
            continue;
        }
        let one = |result: Result<Manifest, Diagnostics>| {
            let mut items = result.unwrap_err().items;
            assert_eq!(items.len(), 1, "{url}: {items:#?}");
            items.remove(0)
        };
        let (by_key, by_cs) = (one(by_key), one(by_cs));
        assert_eq!(by_key.key.as_deref(), Some("accounts[0].table_endpoint"));
        assert_eq!(by_cs.key.as_deref(), Some("accounts[0].connection_string"));
        assert_eq!(
            by_cs.message,
            format!(
                "`TableEndpoint` in the connection string of `sales-eu` (environment variable `TEST_CS`): {}",
                by_key.message
            ),
            "{url}"
        );
        assert_eq!(by_cs.hint, by_key.hint, "{url}");
        let shown = format!("{by_cs} {by_cs:?}");
        for secret in ["SECRETPW", KEY, &KEY[..20]] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    // From a secret file: the file is named instead.
    let manifest = GOOD.replacen(sales, "connection_string = { file = \"keys/sales\" }", 1);
    let fx = Fixture::new(&manifest);
    let file = fx.dir.path().join("keys/sales");
    std::fs::write(
        &file,
        format!(
            "AccountName=saleseu;AccountKey={KEY};TableEndpoint=http://u:SECRETPW@10.1.1.1/x\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let errs = errors(fx.load(&base_env(), &Overrides::default()));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(&format!(
            "`TableEndpoint` in the connection string of `sales-eu` (secret file `{}`): the URL must not contain a user name or password",
            file.display()
        )),
        "{errs:#?}"
    );
    assert!(
        !errs[0].contains("SECRETPW") && !errs[0].contains(&KEY[..20]),
        "{errs:#?}"
    );
}

/// AEP reaches storage accounts over https only: `DefaultEndpointsProtocol=http`
/// is refused with what to write instead, never passed on or turned into https.
#[test]
fn a_plain_http_connection_string_is_refused() {
    let sales = "account_name = \"saleseu\"\naccount_key  = { env = \"TEST_KEY\" }";
    let fx = Fixture::new(&GOOD.replacen(sales, "connection_string = { env = \"TEST_CS\" }", 1));
    for cs in [
        format!("DefaultEndpointsProtocol=http;AccountName=saleseu;AccountKey={KEY}"),
        format!(
            "DefaultEndpointsProtocol=http;AccountName=saleseu;AccountKey={KEY};TableEndpoint=http://127.0.0.1:10002/saleseu"
        ),
    ] {
        let mut env = base_env();
        env.push(("TEST_CS", &cs));
        let result = fx.load(&env, &Overrides::default());
        let items = result.unwrap_err().items;
        assert_eq!(items.len(), 1, "{items:#?}");
        let d = &items[0];
        assert_eq!(d.key.as_deref(), Some("accounts[0].connection_string"));
        assert_eq!(
            d.message,
            "the connection string of `sales-eu` (environment variable `TEST_CS`): `DefaultEndpointsProtocol=http` is not supported: AEP reaches storage accounts over https only"
        );
        assert!(
            d.hint
                .as_deref()
                .is_some_and(|h| h.starts_with("write `DefaultEndpointsProtocol=https`")),
            "{d:?}"
        );
        assert!(!format!("{d} {d:?}").contains(&KEY[..20]));
    }
    // https, written or not, is the canonical form.
    let mut env = base_env();
    let cs = format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={KEY}");
    env.push(("TEST_CS", &cs));
    let m = fx.load(&env, &Overrides::default()).unwrap();
    assert_eq!(m.accounts[0].connection_string.expose(), cs);
}

/// The manifests of the test corpus (`tests/manifests/{good,bad}/*.toml`), sorted.
pub(super) fn corpus() -> Vec<PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/manifests");
    let mut paths = Vec::new();
    for dir in ["good", "bad"] {
        let mut found: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        found.sort();
        paths.extend(found);
    }
    paths
}

/// Loads `path` with its accounts forced through the whole-file parse.
fn load_whole(path: &std::path::Path, env: &Environment) -> Result<Manifest, Diagnostics> {
    let text = source::read(path).map_err(|d| Diagnostics { items: vec![*d] })?;
    let mut file = source::parse_whole(path, text).map_err(|d| Diagnostics { items: vec![*d] })?;
    match check::check(&mut file, &Overrides::default(), env) {
        Ok(checked) => checked,
        Err(check::NotInPieces) => panic!("a file parsed whole has no pieces"),
    }
}

/// What a load came to, as a person reads it: the manifest, or every
/// diagnostic with its place.
fn outcome(result: &Result<Manifest, Diagnostics>) -> String {
    match result {
        Ok(manifest) => format!("{manifest:?}"),
        Err(diagnostics) => diagnostics
            .items
            .iter()
            .map(|d| format!("{:?} {d}", d.location))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Accounts checked one piece at a time give the manifest and the
/// diagnostics (places included) of the whole-file parse: on the corpus,
/// and on a generated manifest with a duplicate, a missing key and a TOML
/// error in later accounts.
#[test]
fn accounts_checked_in_pieces_load_as_the_whole_file_does() {
    let mut paths = corpus();
    let head = "[platform]\norg_id = \"0123456789ABCDEF01234567@AdobeOrg\"\napi_key = \"k\"\n[auth]\nclient_secret = { env = \"TEST_CLIENT_SECRET\" }\n[defaults]\nsandboxes = [\"prod\"]\n";
    let account = |i: usize| {
        format!(
            "\n[[accounts]]\nname = \"n{i}\"\naccount_name = \"acct{i}\"\naccount_key = {{ env = \"TEST_KEY\" }}\n"
        )
    };
    let mut duplicate = head.to_owned();
    let mut missing = head.to_owned();
    let mut broken = head.to_owned();
    for i in 0..30 {
        duplicate.push_str(&account(i));
        missing.push_str(&account(i));
        broken.push_str(&account(i));
    }
    duplicate.push_str(&account(7));
    missing.push_str("\n[[accounts]]\nname = \"no-key\"\naccount_name = \"nokey\"\n");
    broken.push_str("\n[[accounts]]\nname = \"broken\nsandboxes = [\"a\"]\n");
    let fx = Fixture::new(GOOD);
    for (name, text) in [
        ("duplicate", duplicate),
        ("missing", missing),
        ("broken", broken),
    ] {
        let path = fx.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let env = Environment::from_pairs(base_env());
    let mut in_pieces = 0;
    for path in &paths {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        if source::parse_in_pieces(&text).is_some() {
            in_pieces += 1;
        }
        let lazy = load_in(path, &Overrides::default(), &env);
        let whole = load_whole(path, &env);
        assert_eq!(outcome(&lazy), outcome(&whole), "{}", path.display());
    }
    assert!(in_pieces >= 20, "only {in_pieces} manifests were in pieces");
}

/// Key paths are built without `format!`, and read the same.
#[test]
fn key_paths_read_as_written() {
    assert_eq!(source::join("", "owner"), "owner");
    assert_eq!(source::join("accounts[3]", "name"), "accounts[3].name");
    assert_eq!(source::index("accounts", 0), "accounts[0]");
    assert_eq!(source::index("a.b", 1_234_567), "a.b[1234567]");
    assert_eq!(source::index("x", usize::MAX), format!("x[{}]", usize::MAX));
}
