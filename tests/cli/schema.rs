//! The JSON Schemas: `atsprov schema` prints what `docs/schemas/` holds, every
//! example manifest and real plan and report output validate against them,
//! and a misspelt key does not.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::{cmd, read_json};
use crate::common::{atsprov, run};
use crate::emu::Emulator;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A compiled schema from `docs/schemas/NAME.schema.json`.
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new(name: &str) -> Self {
        let path = repo().join(format!("docs/schemas/{name}.schema.json"));
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
        let url = format!("file:///atsprov/{name}.schema.json");
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        compiler.add_resource(&url, schema).unwrap();
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(&url, &mut schemas)
            .unwrap_or_else(|err| panic!("{name} schema does not compile: {err}"));
        Self { schemas, index }
    }

    fn check(&self, instance: &Value) -> Result<(), String> {
        self.schemas
            .validate(instance, self.index)
            .map_err(|err| format!("{err:#}"))
    }
}

/// A TOML file as the JSON value a schema validator sees (what taplo does).
fn toml_as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = toml_edit::ImDocument::parse(text.as_str())
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    table_json(doc.as_table())
}

fn table_json(table: &dyn toml_edit::TableLike) -> Value {
    Value::Object(
        table
            .iter()
            .filter_map(|(key, item)| Some((key.to_owned(), item_json(item)?)))
            .collect(),
    )
}

fn item_json(item: &toml_edit::Item) -> Option<Value> {
    match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(value) => Some(value_json(value)),
        toml_edit::Item::Table(table) => Some(table_json(table)),
        toml_edit::Item::ArrayOfTables(array) => {
            Some(Value::Array(array.iter().map(|t| table_json(t)).collect()))
        }
    }
}

fn value_json(value: &toml_edit::Value) -> Value {
    use toml_edit::Value as V;
    match value {
        V::String(s) => Value::from(s.value().as_str()),
        V::Integer(i) => Value::from(*i.value()),
        V::Float(f) => Value::from(*f.value()),
        V::Boolean(b) => Value::from(*b.value()),
        // taplo hands a date-time to the schema as a string with a format.
        V::Datetime(d) => Value::from(d.value().to_string()),
        V::Array(array) => Value::Array(array.iter().map(value_json).collect()),
        V::InlineTable(table) => table_json(table),
    }
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn schema_command_prints_the_committed_schemas() {
    for name in ["manifest", "plan", "report"] {
        let out = run(atsprov().args(["schema", name]));
        assert_eq!(out.code, 0, "{}", out.transcript());
        let committed =
            std::fs::read_to_string(repo().join(format!("docs/schemas/{name}.schema.json")))
                .unwrap();
        assert_eq!(
            out.stdout, committed,
            "docs/schemas/{name}.schema.json is stale: run `cargo xtask schemas`"
        );
    }
}

#[test]
fn every_example_and_good_manifest_validates() {
    let manifest = Validator::new("manifest");
    let mut files = toml_files(&repo().join("configs"));
    files.extend(toml_files(&repo().join("tests/manifests/good")));
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        if let Err(err) = manifest.check(&toml_as_json(&file)) {
            panic!("{} does not match the schema: {err}", file.display());
        }
    }
}

#[test]
fn example_manifest_names_the_schema_for_editors() {
    for name in ["example.toml", "demo.toml"] {
        let text = std::fs::read_to_string(repo().join("configs").join(name)).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("#:schema ")
            .unwrap_or_else(|| panic!("configs/{name} starts with `{first}`"));
        assert!(
            repo().join("configs").join(target).is_file(),
            "configs/{name}: `{target}` is not a file relative to it"
        );
    }
}

#[test]
fn a_misspelt_key_fails_the_schema() {
    let manifest = Validator::new("manifest");
    let example = repo().join("configs/example.toml");
    let good = toml_as_json(&example);
    manifest.check(&good).unwrap();
    let text = std::fs::read_to_string(&example).unwrap();
    let misspellings = [
        ("account_name", "acount_name"),
        ("org_id", "orgid"),
        ("client_secret", "client_secrets"),
        ("concurrency = ", "concurency = "),
        ("\n[defaults]\n", "\n[default]\n"),
        (
            "{ env = \"AEP_CLIENT_SECRET\" }",
            "{ enc = \"AEP_CLIENT_SECRET\" }",
        ),
    ];
    for (right, wrong) in misspellings {
        assert!(text.contains(right), "example.toml has `{right}`");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, text.replacen(right, wrong, 1)).unwrap();
        assert!(
            manifest.check(&toml_as_json(&path)).is_err(),
            "`{wrong}` passed the schema"
        );
    }
}

#[test]
fn manifests_the_loader_refuses_for_their_shape_fail_the_schema() {
    let manifest = Validator::new("manifest");
    let bad = repo().join("tests/manifests/bad");
    for name in [
        "05-unknown-section",
        "06-unknown-account-key",
        "07-unknown-platform-key",
        "08-wrong-type",
        "09-org-id",
        "17-sandbox-name",
        "18-account-name",
        "22-concurrency-range",
        "27-no-accounts",
        "28-empty-accounts",
        "33-connection-string-and-account-name",
        "35-unknown-secret-key",
        "36-env-and-file",
        "39-adopt-not-bool",
        "40-empty-sandbox-list",
        "44-empty-scopes",
    ] {
        let path = bad.join(format!("{name}.toml"));
        assert!(
            manifest.check(&toml_as_json(&path)).is_err(),
            "{name} passed the schema"
        );
    }
}

#[test]
fn real_plan_and_report_output_validates() {
    let plan_schema = Validator::new("plan");
    let report_schema = Validator::new("report");
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (manifest, keys) = crate::plan::every_situation(&emu, dir.path());
    let m = manifest.to_str().unwrap();

    let plan = run(&mut cmd(
        dir.path(),
        &["plan", m, "--format", "json", "--prune"],
        &keys,
    ));
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    for action in ["create", "update", "no-op", "delete", "conflict"] {
        assert!(
            plan["summary"][action].as_u64() > Some(0),
            "the plan has a {action}: {plan}"
        );
    }
    plan_schema.check(&plan).unwrap();

    let applied = run(&mut cmd(
        dir.path(),
        &["apply", m, "--prune", "--report", "r.json"],
        &keys,
    ));
    assert!(
        applied.stdout.contains("Apply finished"),
        "{}",
        applied.transcript()
    );
    let report = read_json(&dir.path().join("r.json"));
    for status in ["created", "updated", "unchanged", "deleted", "skipped"] {
        assert!(
            report["summary"][status].as_u64() > Some(0),
            "the report has a {status} item: {report}"
        );
    }
    report_schema.check(&report).unwrap();

    // The schemas are not a rubber stamp: a wrong action or a missing field fails.
    let mut wrong = plan.clone();
    wrong["changes"][0]["action"] = Value::from("replace");
    assert!(plan_schema.check(&wrong).is_err());
    let mut wrong = report.clone();
    wrong["summary"].as_object_mut().unwrap().remove("total");
    assert!(report_schema.check(&wrong).is_err());
}
