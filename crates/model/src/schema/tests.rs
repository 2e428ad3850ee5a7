//! Tests of the schemas: the manifest schema accepts exactly the keys the loader accepts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Kind;
use crate::manifest::{Environment, Overrides, load_in};

/// A manifest the loader accepts, with an unknown key put in one table.
fn manifest_with_unknown(section: &str) -> String {
    let extra = |here: &str| {
        if here == section {
            "zzqx_unknown = 1\n"
        } else {
            ""
        }
    };
    let secret = if section == "secret" {
        r#"{ env = "K", zzqx_unknown = 1 }"#
    } else {
        r#"{ env = "K" }"#
    };
    format!(
        "{top}[platform]\norg_id = \"0123456789ABCDEF01234567@AdobeOrg\"\napi_key = \"id\"\n{platform}\
         [auth]\nclient_secret = {{ env = \"S\" }}\n{auth}\
         [defaults]\n{defaults}\
         [[accounts]]\nname = \"a\"\naccount_name = \"abc\"\naccount_key = {secret}\n{account}",
        top = extra("top"),
        platform = extra("platform"),
        auth = extra("auth"),
        defaults = extra("defaults"),
        account = extra("account"),
    )
}

/// The keys the loader lists as known when it meets an unknown key in `section`.
fn loader_keys(section: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, manifest_with_unknown(section)).unwrap();
    let env = Environment::from_pairs([("K", "a2V5"), ("S", "secret")]);
    let diagnostics = load_in(&path, &Overrides::default(), &env)
        .expect_err("an unknown key makes the manifest invalid");
    let unknown = diagnostics
        .items
        .iter()
        .find(|d| {
            d.key
                .as_deref()
                .is_some_and(|k| k.ends_with("zzqx_unknown"))
        })
        .unwrap_or_else(|| {
            panic!("no diagnostic for the unknown key in {section}: {diagnostics:?}")
        });
    let hint = unknown
        .hint
        .as_deref()
        .expect("the diagnostic lists the known keys");
    let list = hint
        .strip_prefix("known keys: ")
        .unwrap_or_else(|| panic!("unexpected hint `{hint}`"));
    list.split(", ")
        .map(|k| k.trim_matches('`').to_owned())
        .collect()
}

/// The property names of one object schema.
fn properties(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .expect("an object schema has properties")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn manifest_schema_has_exactly_the_loaders_keys() {
    let schema = Kind::Manifest.schema().to_value();
    let defs = &schema["$defs"];
    let cases = [
        ("top", &schema),
        ("platform", &defs["PlatformSection"]),
        ("auth", &defs["AuthSection"]),
        ("defaults", &defs["DefaultsSection"]),
        ("account", &defs["AccountTable"]),
    ];
    for (section, object) in cases {
        assert_eq!(
            properties(object),
            loader_keys(section),
            "section {section}"
        );
        assert_eq!(
            object["additionalProperties"],
            Value::Bool(false),
            "section {section}"
        );
    }
    let secret_keys: BTreeSet<String> = ["EnvSecret", "FileSecret"]
        .iter()
        .flat_map(|name| properties(&defs[*name]))
        .collect();
    assert_eq!(secret_keys, loader_keys("secret"));
}

#[test]
fn manifest_schema_defaults_are_the_loaders() {
    let schema = Kind::Manifest.schema().to_value();
    let defs = &schema["$defs"];
    assert_eq!(
        defs["PlatformSection"]["properties"]["endpoint"]["default"],
        crate::wire::DEFAULT_ENDPOINT
    );
    assert_eq!(
        defs["DefaultsSection"]["properties"]["concurrency"]["default"],
        crate::manifest::DEFAULT_CONCURRENCY
    );
    assert_eq!(
        defs["DefaultsSection"]["properties"]["concurrency"]["maximum"],
        crate::manifest::MAX_CONCURRENCY
    );
    assert_eq!(
        defs["AuthSection"]["properties"]["scopes"]["default"],
        serde_json::json!(crate::manifest::DEFAULT_SCOPES)
    );
}

#[test]
fn output_schemas_name_their_version() {
    let plan = Kind::Plan.schema().to_value();
    assert_eq!(
        plan["properties"]["schema"]["const"],
        crate::render::PLAN_SCHEMA
    );
    let report = Kind::Report.schema().to_value();
    assert_eq!(
        report["properties"]["schema"]["const"],
        crate::report::REPORT_SCHEMA
    );
    for kind in Kind::ALL {
        let text = kind.to_json();
        assert!(text.ends_with("}\n"), "{}", kind.name());
        serde_json::from_str::<Value>(&text).expect("the schema is JSON");
    }
}
