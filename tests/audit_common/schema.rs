//! Checks audit events against `schema/audit-event.schema.json` with a small interpreter of
//! the JSON Schema keywords that file uses (a full validator crate would cost more build time
//! than the whole test suite). A keyword it does not know is a test failure, so the schema
//! can never hold a constraint that silently goes unchecked.

use serde_json::Value;
use std::sync::OnceLock;

/// The shipped schema, parsed once.
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/audit-event.schema.json"
        );
        let text = std::fs::read_to_string(path).expect("read the audit event schema");
        serde_json::from_str(&text).expect("the audit event schema is JSON")
    })
}

/// Panic with every violation if any event does not match the schema.
pub fn assert_valid(events: &[Value]) {
    let root = schema();
    let mut errors = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let mut errs = Vec::new();
        check(root, root, ev, "", &mut errs);
        for e in errs {
            errors.push(format!("event {i} ({}): {e}", ev));
        }
    }
    assert!(
        errors.is_empty(),
        "audit events violate the schema:\n{}",
        errors.join("\n")
    );
}

/// Violations of `schema` by `inst`, or none.
pub fn violations(inst: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(schema(), schema(), inst, "", &mut errs);
    errs
}

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$comment",
    "title",
    "description",
    "examples",
];

fn check(schema: &Value, root: &Value, inst: &Value, path: &str, errs: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errs.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (key, arg) in obj {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let target = resolve_ref(root, arg.as_str().expect("$ref is a string"));
                check(target, root, inst, path, errs);
            }
            "type" => check_type(arg, inst, path, errs),
            "enum" => {
                if !arg.as_array().expect("enum array").contains(inst) {
                    errs.push(format!("{path}: {inst} not in {arg}"));
                }
            }
            "const" => {
                if arg != inst {
                    errs.push(format!("{path}: {inst} is not {arg}"));
                }
            }
            "required" => {
                if let Some(o) = inst.as_object() {
                    for name in arg.as_array().expect("required array") {
                        let name = name.as_str().expect("required names");
                        if !o.contains_key(name) {
                            errs.push(format!("{path}: missing required {name:?}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(o) = inst.as_object() {
                    for (name, sub) in arg.as_object().expect("properties object") {
                        if let Some(v) = o.get(name) {
                            check(sub, root, v, &format!("{path}/{name}"), errs);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let known = obj.get("properties").and_then(Value::as_object);
                if let Some(o) = inst.as_object() {
                    for (name, v) in o {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        match arg {
                            Value::Bool(false) => {
                                errs.push(format!("{path}: unexpected property {name:?}"))
                            }
                            other => check(other, root, v, &format!("{path}/{name}"), errs),
                        }
                    }
                }
            }
            "items" => {
                if let Some(a) = inst.as_array() {
                    for (i, v) in a.iter().enumerate() {
                        check(arg, root, v, &format!("{path}/{i}"), errs);
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(limit)) = (inst.as_f64(), arg.as_f64()) {
                    let bad = if key == "minimum" {
                        n < limit
                    } else {
                        n > limit
                    };
                    if bad {
                        errs.push(format!("{path}: {n} violates {key} {limit}"));
                    }
                }
            }
            "minLength" => {
                if let Some(s) = inst.as_str() {
                    if (s.chars().count() as u64) < arg.as_u64().expect("minLength") {
                        errs.push(format!("{path}: shorter than {arg}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = inst.as_str() {
                    let re = regex_lite::Regex::new(arg.as_str().expect("pattern"))
                        .expect("schema pattern compiles");
                    if !re.is_match(s) {
                        errs.push(format!("{path}: {s:?} does not match {arg}"));
                    }
                }
            }
            "format" => check_format(arg.as_str().expect("format"), inst, path, errs),
            "allOf" => {
                for sub in arg.as_array().expect("allOf array") {
                    check(sub, root, inst, path, errs);
                }
            }
            "if" => {
                let mut cond = Vec::new();
                check(arg, root, inst, path, &mut cond);
                let branch = if cond.is_empty() { "then" } else { "else" };
                if let Some(sub) = obj.get(branch) {
                    check(sub, root, inst, path, errs);
                }
            }
            "then" | "else" => {}
            other => panic!("the test validator does not implement keyword {other:?}"),
        }
    }
}

fn resolve_ref<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $ref supported: {reference}"));
    root.pointer(pointer)
        .unwrap_or_else(|| panic!("unresolved $ref {reference}"))
}

fn check_type(arg: &Value, inst: &Value, path: &str, errs: &mut Vec<String>) {
    let names: Vec<&str> = match arg {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => panic!("bad type keyword {arg}"),
    };
    let ok = names.iter().any(|t| match *t {
        "object" => inst.is_object(),
        "array" => inst.is_array(),
        "string" => inst.is_string(),
        "boolean" => inst.is_boolean(),
        "null" => inst.is_null(),
        "number" => inst.is_number(),
        "integer" => inst.is_i64() || inst.is_u64(),
        other => panic!("unknown type {other}"),
    });
    if !ok {
        errs.push(format!("{path}: {inst} is not of type {arg}"));
    }
}

fn check_format(format: &str, inst: &Value, path: &str, errs: &mut Vec<String>) {
    let Some(s) = inst.as_str() else { return };
    let pattern = match format {
        "uuid" => r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        // RFC 3339 section 5.6: the offset is mandatory (Z or +hh:mm).
        "date-time" => r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
        other => panic!("the test validator does not implement format {other:?}"),
    };
    let re = regex_lite::Regex::new(pattern).expect("format pattern");
    if !re.is_match(s) {
        errs.push(format!("{path}: {s:?} is not a {format}"));
    }
}
