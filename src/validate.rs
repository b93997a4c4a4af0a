//! Offline validation of manifests (`gdap-operator validate FILE|DIR…`), for pre-commit hooks and CI
//! in GitOps repositories. It runs the same rules as the API server — the CRD's OpenAPI schema and
//! its CEL rules, both taken from the generated CRDs — and then the checks only the operator can
//! make: role names against the catalog, resource names, and cron schedules.
//!
//! Documents of other API groups are skipped, so a whole repository can be checked at once.

pub use crate::api::rules::FieldProblem;
use crate::api::rules::{consent_problems, relationship_problems};
use crate::api::{self, AppConsent, GdapFleet, GdapRelationship, TenantSync};
use crate::crdgen;
use crate::validate_fleet::fleet_problems;
use jsonschema::Validator;
use kube::core::cel;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one object, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the object came from.
    pub file: PathBuf,
    /// `Kind/name`, or `document N` when the object has no usable identity.
    pub object: String,
    /// Dotted path of the field, e.g. `spec.duration` (empty for the whole document).
    pub field: String,
    /// What is wrong and which rule says so.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.file.display(), self.object)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// What a validation run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
    /// How many gdap.io objects were checked.
    pub objects_checked: usize,
    /// How many documents belonged to other API groups and were skipped.
    pub skipped: usize,
}

/// The compiled rules for each kind.
pub struct ManifestValidator {
    kinds: Vec<KindRules>,
}

struct KindRules {
    kind: String,
    api_version: String,
    schema: Value,
    compiled: Validator,
}

impl Default for ManifestValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestValidator {
    /// Compiles the schemas of all CRDs the operator owns.
    pub fn new() -> Self {
        let kinds = crdgen::crds()
            .iter()
            .map(|crd| {
                let schema = crdgen::schema_of(crd);
                let strict = strict_json_schema(&schema);
                let compiled = jsonschema::draft4::new(&strict)
                    .expect("generated CRD schemas are valid JSON Schema");
                KindRules {
                    kind: crd.spec.names.kind.clone(),
                    api_version: format!("{}/{}", crd.spec.group, crd.spec.versions[0].name),
                    schema,
                    compiled,
                }
            })
            .collect();
        ManifestValidator { kinds }
    }

    /// Validates every `.yaml`/`.yml` file in `paths` (directories are walked recursively).
    pub fn validate_paths(&self, paths: &[PathBuf]) -> std::io::Result<Report> {
        let mut report = Report::default();
        for file in collect_files(paths)? {
            let text = std::fs::read_to_string(&file)?;
            self.validate_text(&file, &text, &mut report);
        }
        Ok(report)
    }

    /// Validates a YAML stream (one or more documents) read from `file`.
    pub fn validate_text(&self, file: &Path, text: &str, report: &mut Report) {
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let label = format!("document {}", index + 1);
            let value = match serde::Deserialize::deserialize(document) {
                Ok(serde_yaml::Value::Null) => continue,
                Ok(v) => yaml_to_json(v),
                Err(e) => {
                    report.problems.push(problem(
                        file,
                        &label,
                        FieldProblem::new("", format!("not valid YAML: {e}")),
                    ));
                    break;
                }
            };
            match self.validate_object(&value) {
                Outcome::Skipped => report.skipped += 1,
                Outcome::Checked(problems) => {
                    report.objects_checked += 1;
                    let object = object_label(&value).unwrap_or(label);
                    report
                        .problems
                        .extend(problems.into_iter().map(|p| problem(file, &object, p)));
                }
            }
        }
    }

    /// Validates one object given as JSON.
    pub fn validate_object(&self, object: &Value) -> Outcome {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !api_version.starts_with(&format!("{}/", api::GROUP)) {
            return Outcome::Skipped;
        }
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(rules) = self.kinds.iter().find(|k| k.kind == kind) else {
            let known: Vec<_> = self.kinds.iter().map(|k| k.kind.as_str()).collect();
            return Outcome::Checked(vec![FieldProblem::new(
                "kind",
                format!(
                    "unknown kind {kind:?} in {api_version}; expected one of {}",
                    known.join(", ")
                ),
            )]);
        };
        if api_version != rules.api_version {
            return Outcome::Checked(vec![FieldProblem::new(
                "apiVersion",
                format!("{api_version:?} is not served; use {}", rules.api_version),
            )]);
        }
        Outcome::Checked(rules.check(object))
    }
}

/// The validator a fleet's rendered objects are checked with.
static CHILDREN: std::sync::LazyLock<ManifestValidator> =
    std::sync::LazyLock::new(ManifestValidator::new);

impl ManifestValidator {
    /// Every check of its kind on one object a fleet would write.
    fn check_child(&self, object: &Value) -> Vec<FieldProblem> {
        match self.validate_object(object) {
            Outcome::Checked(problems) => problems,
            Outcome::Skipped => Vec::new(),
        }
    }
}

/// The result for one document.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a gdap.io object.
    Skipped,
    /// Checked; the problems found (empty when valid).
    Checked(Vec<FieldProblem>),
}

impl KindRules {
    fn check(&self, object: &Value) -> Vec<FieldProblem> {
        let mut problems = metadata_problems(object);
        problems.extend(self.schema_problems(object));
        problems.extend(list_type_problems(&self.schema, object, ""));
        if !problems.is_empty() {
            return problems; // CEL and semantic checks assume a well-typed object.
        }
        problems.extend(self.cel_problems(object));
        if !problems.is_empty() {
            return problems; // the server's own rule already names the problem once.
        }
        semantic_problems(&self.kind, object)
    }

    fn schema_problems(&self, object: &Value) -> Vec<FieldProblem> {
        self.compiled
            .iter_errors(object)
            .flat_map(|e| schema_problem(&e))
            .collect()
    }

    fn cel_problems(&self, object: &Value) -> Vec<FieldProblem> {
        match cel::Validator::new().validate(&self.schema, object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| FieldProblem::new(e.field_path.trim_start_matches('.'), e.message.clone()))
                .collect(),
        }
    }
}

/// Turns a JSON Schema error into problems that name the field: one per unknown field, and
/// long values summarized instead of printed whole.
fn schema_problem(error: &jsonschema::ValidationError<'_>) -> Vec<FieldProblem> {
    let path = pointer_to_path(error.instance_path().as_str());
    if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
        error.kind()
    {
        return unexpected
            .iter()
            .map(|name| {
                let field = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                FieldProblem::new(
                    field,
                    "unknown field (not in the schema; check the spelling with `kubectl explain`)",
                )
            })
            .collect();
    }
    let mut message = error.to_string();
    let instance = error.instance().to_string();
    if instance.len() > 60 {
        message = message.replace(&instance, &summarize(error.instance()));
    }
    vec![FieldProblem::new(path, message)]
}

fn summarize(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("a list of {} items", items.len()),
        Value::Object(fields) => format!("an object with {} fields", fields.len()),
        Value::String(text) => format!("a string of {} characters", text.chars().count()),
        other => other.to_string(),
    }
}

/// The uniqueness that `x-kubernetes-list-type: set | map` asks of the API server, which JSON
/// Schema cannot express: duplicate items (sets) and duplicate keys (maps) are refused.
fn list_type_problems(schema: &Value, value: &Value, path: &str) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    match value {
        Value::Object(fields) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return problems;
            };
            for (name, child) in fields {
                if let Some(child_schema) = properties.get(name) {
                    let child_path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    problems.extend(list_type_problems(child_schema, child, &child_path));
                }
            }
        }
        Value::Array(items) => {
            problems.extend(duplicate_items(schema, items, path));
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    problems.extend(list_type_problems(
                        item_schema,
                        item,
                        &format!("{path}[{i}]"),
                    ));
                }
            }
        }
        _ => {}
    }
    problems
}

fn duplicate_items(schema: &Value, items: &[Value], path: &str) -> Vec<FieldProblem> {
    let keys: Vec<&str> = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => Vec::new(),
        Some("map") => schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
        _ => return Vec::new(),
    };
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let identity = if keys.is_empty() {
            item.clone()
        } else {
            Value::Array(
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        };
        if !seen.insert(identity.to_string()) {
            let what = if keys.is_empty() {
                identity.to_string()
            } else {
                format!("{} {}", keys.join(","), identity)
            };
            problems.push(FieldProblem::new(
                format!("{path}[{i}]"),
                format!("duplicate value: {what} is listed more than once"),
            ));
        }
    }
    problems
}

/// Checks Kubernetes itself makes on every object: a valid name.
fn metadata_problems(object: &Value) -> Vec<FieldProblem> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str);
    match name {
        None => vec![FieldProblem::new("metadata.name", "required")],
        Some(n) if !is_dns_subdomain(n) => vec![FieldProblem::new(
            "metadata.name",
            format!(
                "{n:?} must be a lowercase DNS subdomain (a-z, 0-9, '-', '.'; at most 253 characters)"
            ),
        )],
        Some(_) => Vec::new(),
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let re =
        regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
            .expect("valid regex");
    name.len() <= 253 && re.is_match(name)
}

/// The checks that need the operator's own knowledge (role catalog, resources, cron).
pub fn semantic_problems(kind: &str, object: &Value) -> Vec<FieldProblem> {
    match kind {
        "GdapRelationship" => serde_json::from_value::<GdapRelationship>(object.clone())
            .map(|o| relationship_problems(&o))
            .unwrap_or_else(|e| vec![FieldProblem::new("", e.to_string())]),
        "AppConsent" => serde_json::from_value::<AppConsent>(object.clone())
            .map(|o| consent_problems(&o))
            .unwrap_or_else(|e| vec![FieldProblem::new("", e.to_string())]),
        "TenantSync" => serde_json::from_value::<TenantSync>(object.clone())
            .map(|o| sync_problems(&o))
            .unwrap_or_else(|e| vec![FieldProblem::new("", e.to_string())]),
        "GdapFleet" => serde_json::from_value::<GdapFleet>(object.clone())
            .map(|o| fleet_problems(&o, &|child| CHILDREN.check_child(child)))
            .unwrap_or_else(|e| vec![FieldProblem::new("", e.to_string())]),
        _ => Vec::new(),
    }
}

/// The schedule must parse as cron (the rules of [`crate::sync::schedule`]).
pub fn sync_problems(object: &TenantSync) -> Vec<FieldProblem> {
    match crate::sync::schedule::Schedule::parse(&object.spec.schedule) {
        Ok(_) => Vec::new(),
        Err(e) => vec![FieldProblem::new("spec.schedule", e.to_string())],
    }
}

fn problem(file: &Path, object: &str, p: FieldProblem) -> Problem {
    Problem {
        file: file.to_path_buf(),
        object: object.to_string(),
        field: p.field,
        message: p.message,
    }
}

fn object_label(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let name = value.pointer("/metadata/name")?.as_str()?;
    Some(format!("{kind}/{name}"))
}

/// `/spec/roles/0` → `spec.roles[0]`.
fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&part);
        }
    }
    path
}

/// Makes a CRD schema as strict as the API server with `kubectl --validate=strict`: objects with
/// declared properties refuse unknown fields, and `nullable` admits null.
fn strict_json_schema(schema: &Value) -> Value {
    let mut schema = schema.clone();
    tighten(&mut schema);
    // The API server itself provides these at the root of every object.
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
        properties.insert("kind".into(), serde_json::json!({"type": "string"}));
        properties.insert("metadata".into(), serde_json::json!({"type": "object"}));
    }
    schema
}

fn tighten(node: &mut Value) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !preserves && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if map.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = map.get("type").cloned()
    {
        map.insert("type".into(), serde_json::json!([t, "null"]));
    }
    for value in map.values_mut() {
        match value {
            Value::Object(_) => tighten(value),
            Value::Array(items) => items.iter_mut().for_each(tighten),
            _ => {}
        }
    }
}

/// A YAML value as JSON (what the schema and CEL checks read).
pub fn yaml_to_json(value: serde_yaml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The `.yaml`/`.yml` files among `paths`, directories walked recursively in name order.
pub fn collect_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            files.extend(
                collect_files(&entries)?
                    .into_iter()
                    .filter(|p| is_yaml(p) || p.is_dir()),
            );
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or directory", path.display()),
            ));
        }
    }
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}
