//! Reads YAML or JSON text into an ordered, untyped tree that the format readers check by hand.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::budget;
use super::error::Problem;

/// A YAML or JSON value with mapping order kept and duplicate keys kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Raw>),
    Map(Vec<(String, Raw)>),
}

impl Raw {
    /// What kind of value this is, for messages: "a string", "a list", ...
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool(_) => "a boolean",
            Raw::Int(_) => "an integer",
            Raw::Float(_) => "a number",
            Raw::Str(_) => "a string",
            Raw::Seq(_) => "a list",
            Raw::Map(_) => "a mapping",
        }
    }

    /// A scalar as text (`1` → "1", `true` → "true"); `None` for null, lists and mappings.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            Raw::Str(s) => Some(s.clone()),
            Raw::Int(i) => Some(i.to_string()),
            Raw::Float(f) => Some(f.to_string()),
            Raw::Bool(b) => Some(b.to_string()),
            Raw::Null | Raw::Seq(_) | Raw::Map(_) => None,
        }
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        i128::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom("integer too large"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        budget::spend_str(v)?;
        Ok(Raw::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        budget::spend_str(&v)?;
        Ok(Raw::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = {
            budget::spend()?;
            seq.next_element::<Raw>()?
        } {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(Key(key)) = {
            budget::spend()?;
            map.next_key::<Key>()?
        } {
            entries.push((key, map.next_value::<Raw>()?));
        }
        Ok(Raw::Map(entries))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Raw, A::Error> {
        Err(de::Error::custom("YAML tags are not supported"))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// A mapping key: a string, or a number or boolean taken as text.
struct Key(String);

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        budget::spend_str(v)?;
        Ok(Key(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        budget::spend_str(&v)?;
        Ok(Key(v))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

/// A value read and dropped, each of its items and entries charged to the
/// budget (serde's `IgnoredAny` would walk an alias's expansion unpaid).
struct Skip;

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while {
            budget::spend()?;
            seq.next_element::<Skip>()?.is_some()
        } {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while {
            budget::spend()?;
            map.next_entry::<Skip, Skip>()?.is_some()
        } {}
        Ok(Skip)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Skip, A::Error> {
        Err(de::Error::custom("YAML tags are not supported"))
    }
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

/// gorchestrator's `digraph`, read without building one value per cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Matrix {
    /// Set when `digraph` is not a list: what it is instead.
    pub not_a_list: Option<&'static str>,
    /// Number of cells.
    pub len: u64,
    /// Positions of the cells that are 1, ascending.
    pub ones: Vec<u64>,
    /// The first few cells that are neither 0 nor 1: position and what they hold.
    pub bad: Vec<(u64, String)>,
    /// How many cells are neither 0 nor 1 in all.
    pub bad_count: u64,
}

/// How many bad cells [`Matrix::bad`] keeps.
pub(super) const BAD_CELLS_KEPT: usize = 10;

enum Cell {
    Zero,
    One,
    Other(String),
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0 or 1")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Other("null".into()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Other("null".into()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell, E> {
        Ok(Cell::Other(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
        Ok(Cell::Other(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
        Ok(match v {
            0 => Cell::Zero,
            1 => Cell::One,
            _ => Cell::Other(v.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
        Ok(Cell::Other(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
        budget::spend_str(v)?;
        Ok(Cell::Other(format!("{v:?}")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Cell, A::Error> {
        SkipVisitor.visit_seq(seq)?;
        Ok(Cell::Other("a list".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Cell, A::Error> {
        SkipVisitor.visit_map(map)?;
        Ok(Cell::Other("a mapping".into()))
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

struct MatrixVisitor;

impl MatrixVisitor {
    fn not_a_list(kind: &'static str) -> Matrix {
        Matrix {
            not_a_list: Some(kind),
            ..Matrix::default()
        }
    }
}

impl<'de> Visitor<'de> for MatrixVisitor {
    type Value = Matrix;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of 0s and 1s")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Matrix, E> {
        Ok(Self::not_a_list("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Matrix, E> {
        Ok(Self::not_a_list("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Matrix, E> {
        Ok(Self::not_a_list("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Matrix, E> {
        Ok(Self::not_a_list("an integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Matrix, E> {
        Ok(Self::not_a_list("an integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Matrix, E> {
        Ok(Self::not_a_list("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Matrix, E> {
        Ok(Self::not_a_list("a string"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Matrix, A::Error> {
        SkipVisitor.visit_map(map)?;
        Ok(Self::not_a_list("a mapping"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Matrix, A::Error> {
        let mut matrix = Matrix::default();
        while let Some(cell) = {
            budget::spend()?;
            seq.next_element::<Cell>()?
        } {
            match cell {
                Cell::Zero => {}
                Cell::One => matrix.ones.push(matrix.len),
                Cell::Other(what) => {
                    if matrix.bad.len() < BAD_CELLS_KEPT {
                        matrix.bad.push((matrix.len, what));
                    }
                    matrix.bad_count += 1;
                }
            }
            matrix.len += 1;
        }
        Ok(matrix)
    }
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MatrixVisitor)
    }
}

/// The top level of a DAG file: its fields in order, `digraph` read apart.
#[derive(Debug, Default)]
pub(super) struct Top {
    pub fields: Vec<(String, Raw)>,
    pub digraph: Option<Matrix>,
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping with the DAG's `name` and `nodes`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut top = Top::default();
        while let Some(Key(key)) = {
            budget::spend()?;
            map.next_key::<Key>()?
        } {
            if key == "digraph" && top.digraph.is_none() {
                top.digraph = Some(map.next_value::<Matrix>()?);
            } else {
                let value = map.next_value::<Raw>()?;
                top.fields.push((key, value));
            }
        }
        Ok(top)
    }
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TopVisitor)
    }
}

/// Whether the text is JSON: its first non-whitespace character is `{`.
pub(super) fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Reads JSON text.
pub(super) fn read_json(text: &str) -> Result<Top, Problem> {
    serde_json::from_str::<Top>(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let message = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        Problem::new(
            format!("line {line}, column {column}"),
            format!("invalid JSON: {message}"),
        )
    })
}

/// Reads YAML text.
pub(super) fn read_yaml(text: &str) -> Result<Top, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::new("file", "the file is empty"));
    }
    let _budget = budget::start(budget::for_text(text.len()));
    serde_yaml_ng::from_str::<Top>(text).map_err(yaml_problem)
}

/// A YAML error as a problem at its line and column.
fn yaml_problem(e: serde_yaml_ng::Error) -> Problem {
    let message = e.to_string();
    match e.location() {
        Some(at) => {
            let (line, column) = (at.line(), at.column());
            let mark = format!(" at line {line} column {column}");
            let message = message.replacen(&mark, "", 1);
            Problem::new(
                format!("line {line}, column {column}"),
                format!("invalid YAML: {message}"),
            )
        }
        None => Problem::new("file", format!("invalid YAML: {message}")),
    }
}

/// Reads a whole YAML document (JSON is YAML too) into a tree, under the
/// same alias budget as a DAG: for other files read by hand, such as TOSCA
/// service templates.
pub(crate) fn read_document(text: &str) -> Result<Raw, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Problem::new("file", "the file is empty"));
    }
    let _budget = budget::start(budget::for_text(text.len()));
    serde_yaml_ng::from_str::<Raw>(text).map_err(yaml_problem)
}

/// Reads YAML or JSON, telling them apart by the first character.
pub(super) fn read(text: &str) -> Result<Top, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if looks_like_json(text) {
        read_json(text)
    } else {
        read_yaml(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates() {
        let top = read("{\"b\": 1, \"a\": [true, null, 1.5, \"x\"], \"b\": {}}").unwrap();
        let keys: Vec<&str> = top.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(
            top.fields[1].1,
            Raw::Seq(vec![
                Raw::Bool(true),
                Raw::Null,
                Raw::Float(1.5),
                Raw::Str("x".into())
            ])
        );
    }

    #[test]
    fn yaml_keeps_order_and_duplicates() {
        let top = read("z: 1\na: 2\nz: 3\n1: x\n").unwrap();
        let keys: Vec<&str> = top.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "z", "1"]);
    }

    #[test]
    fn matrix_is_read_compactly() {
        let top = read("{\"digraph\": [0, 1, 2, \"1\", 1, -1, 1.0, null, [1]]}").unwrap();
        let m = top.digraph.unwrap();
        assert_eq!(m.len, 9);
        assert_eq!(m.ones, [1, 4]);
        assert_eq!(m.bad_count, 6);
        assert_eq!(m.bad[0], (2, "2".to_string()));
        assert_eq!(m.bad[1], (3, "\"1\"".to_string()));
    }

    #[test]
    fn matrix_not_a_list() {
        let top = read("{\"digraph\": {\"a\": 1}}").unwrap();
        assert_eq!(top.digraph.unwrap().not_a_list, Some("a mapping"));
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let e = read("{\n  \"name\": \"x\",\n  \"nodes\": {,}\n}").unwrap_err();
        assert_eq!(e.location, "line 3, column 13");
        assert!(e.message.starts_with("invalid JSON: "), "{}", e.message);
        assert!(!e.message.contains("at line"), "{}", e.message);
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        let e = read("name: x\nnodes:\n  a: [1, 2\n  b: c\n").unwrap_err();
        assert!(e.location.starts_with("line "), "{e:?}");
        assert!(e.message.starts_with("invalid YAML: "), "{}", e.message);
        let e = read("name: x\n nodes: y\n").unwrap_err();
        assert_eq!(e.location, "line 2, column 7", "{e:?}");
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let e = read("- a\n- b\n").unwrap_err();
        assert!(e.message.contains("expected a mapping"), "{e:?}");
        assert!(read("").is_err());
        assert!(read("   \n").is_err());
        assert!(read("{\"a\": 1} x").is_err());
    }
}
