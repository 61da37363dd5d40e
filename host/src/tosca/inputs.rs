//! The topology's inputs: values from the `--inputs` file or the defaults, checked against each
//! input's type and constraints.

use crate::dag::raw::Raw;

use super::model::{Constraint, InputDef, Issues};

/// The value of every declared input (`None`: optional, not given, no default).
pub(super) type Values = Vec<(String, Option<Raw>)>;

/// Gives each input its value, reporting missing required inputs, values
/// for inputs the template does not declare, and values that break a type
/// or constraint. `source` names where `given` came from.
pub(super) fn resolve(
    declared: &[InputDef],
    given: &[(String, Raw)],
    source: &str,
    issues: &mut Issues,
) -> Values {
    for (name, _) in given {
        if !declared.iter().any(|d| &d.name == name) {
            let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            let known = if names.is_empty() {
                "it declares none".to_owned()
            } else {
                format!("it declares `{}`", names.join("`, `"))
            };
            issues.error(
                &format!("{source}, {name}"),
                format!("the template has no input `{name}` ({known})"),
            );
        }
    }
    let mut values = Vec::with_capacity(declared.len());
    for input in declared {
        let value = given
            .iter()
            .find(|(name, _)| name == &input.name)
            .map(|(_, v)| v.clone())
            .or_else(|| input.default.clone())
            .filter(|v| !matches!(v, Raw::Null));
        match &value {
            None if input.required => issues.error(
                &input.at,
                format!(
                    "input `{}` is required and has no default: give it in the file of `--inputs`",
                    input.name
                ),
            ),
            None => {}
            Some(value) => check(input, value, issues),
        }
        values.push((input.name.clone(), value));
    }
    values
}

/// Checks a value against its input's type and constraints.
fn check(input: &InputDef, value: &Raw, issues: &mut Issues) {
    if let Some(type_name) = &input.type_name
        && let Err(message) = check_type(type_name, value)
    {
        issues.error(&input.at, format!("input `{}`: {message}", input.name));
        return;
    }
    for constraint in &input.constraints {
        match satisfies(constraint, value) {
            Checked::Yes => {}
            Checked::No(message) => issues.error(
                &constraint.at,
                format!("input `{}` is {}: {message}", input.name, shown(value)),
            ),
            Checked::Unsupported(message) => issues.unsupported(&constraint.at, message),
        }
    }
}

/// A value as a message shows it.
fn shown(value: &Raw) -> String {
    match value {
        Raw::Str(s) => format!("{s:?}"),
        other => other
            .scalar_text()
            .unwrap_or_else(|| other.kind().to_owned()),
    }
}

/// TOSCA's primitive types, and PortDef; other types are not checked.
fn check_type(type_name: &str, value: &Raw) -> Result<(), String> {
    let fits = match type_name {
        "integer" => matches!(value, Raw::Int(_)),
        "float" => matches!(value, Raw::Int(_) | Raw::Float(_)),
        "boolean" => matches!(value, Raw::Bool(_)),
        "string" | "timestamp" | "version" => matches!(value, Raw::Str(_)),
        "list" => matches!(value, Raw::Seq(_)),
        "map" => matches!(value, Raw::Map(_)),
        t if t.starts_with("scalar-unit.") => matches!(value, Raw::Str(_)),
        "PortDef" | "tosca.datatypes.network.PortDef" => {
            return match value {
                Raw::Int(port) if (1..=65535).contains(port) => Ok(()),
                _ => Err(format!(
                    "expected a port number (1 to 65535), found {}",
                    shown(value)
                )),
            };
        }
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "expected {}, found {}",
            match type_name {
                "integer" => "an integer",
                "float" => "a number",
                "boolean" => "true or false",
                "list" => "a list",
                "map" => "a mapping",
                _ => "a string",
            },
            value.kind()
        ))
    }
}

/// The outcome of checking a constraint.
enum Checked {
    Yes,
    No(String),
    Unsupported(String),
}

fn number(raw: &Raw) -> Option<f64> {
    match raw {
        // Precision past 2^53 does not matter to a constraint on an input.
        Raw::Int(i) => Some(*i as f64),
        Raw::Float(f) => Some(*f),
        _ => None,
    }
}

/// Equal as TOSCA compares: numbers by value, anything else as written.
fn same(a: &Raw, b: &Raw) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn length(raw: &Raw) -> Option<usize> {
    match raw {
        Raw::Str(s) => Some(s.chars().count()),
        Raw::Seq(items) => Some(items.len()),
        Raw::Map(entries) => Some(entries.len()),
        _ => None,
    }
}

fn satisfies(constraint: &Constraint, value: &Raw) -> Checked {
    let argument = &constraint.argument;
    let verdict = |ok: bool, message: String| {
        if ok {
            Checked::Yes
        } else {
            Checked::No(message)
        }
    };
    let compare = |test: fn(f64, f64) -> bool, words: &str| match (number(value), number(argument))
    {
        (Some(v), Some(a)) => verdict(
            test(v, a),
            format!("it must be {words} {}", shown(argument)),
        ),
        _ => Checked::Unsupported(format!(
            "`{}` is checked on numbers only; this input is not checked",
            constraint.operator
        )),
    };
    match constraint.operator.as_str() {
        "equal" => verdict(
            same(value, argument),
            format!("it must be {}", shown(argument)),
        ),
        "greater_than" => compare(|v, a| v > a, "greater than"),
        "greater_or_equal" => compare(|v, a| v >= a, "at least"),
        "less_than" => compare(|v, a| v < a, "less than"),
        "less_or_equal" => compare(|v, a| v <= a, "at most"),
        "in_range" => match argument {
            Raw::Seq(bounds) if bounds.len() == 2 => {
                match (number(value), number(&bounds[0]), number(&bounds[1])) {
                    (Some(v), Some(low), Some(high)) => verdict(
                        low <= v && v <= high,
                        format!(
                            "it must be in [{}, {}]",
                            shown(&bounds[0]),
                            shown(&bounds[1])
                        ),
                    ),
                    _ => Checked::Unsupported(
                        "`in_range` is checked on numbers only; this input is not checked".into(),
                    ),
                }
            }
            _ => Checked::No("`in_range` takes a list of two bounds".into()),
        },
        "valid_values" => match argument {
            Raw::Seq(valid) => verdict(
                valid.iter().any(|v| same(value, v)),
                format!(
                    "it must be one of {}",
                    valid.iter().map(shown).collect::<Vec<_>>().join(", ")
                ),
            ),
            _ => Checked::No("`valid_values` takes a list".into()),
        },
        "length" | "min_length" | "max_length" => match (length(value), number(argument)) {
            (Some(len), Some(n)) => {
                let len = len as f64;
                let (ok, words) = match constraint.operator.as_str() {
                    "length" => (len == n, "of length"),
                    "min_length" => (len >= n, "of length at least"),
                    _ => (len <= n, "of length at most"),
                };
                verdict(ok, format!("it must be {words} {}", shown(argument)))
            }
            _ => Checked::No(format!(
                "`{}` takes a number and applies to strings, lists and mappings",
                constraint.operator
            )),
        },
        other => Checked::Unsupported(format!("constraint `{other}` is not checked by drover")),
    }
}
