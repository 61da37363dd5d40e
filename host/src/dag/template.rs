//! Output references: `${{ nodes.NAME.outputs.KEY }}` and gorchestrator's `get_attribute NAME:KEY`.

use super::model::OutputRef;

const OPEN: &str = "${{";
const CLOSE: &str = "}}";
const GET_ATTRIBUTE: &str = "get_attribute";

/// A malformed output reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${{` with no `}}` after it.
    #[error("`${{{{` at byte {at} has no closing `}}}}`")]
    Unclosed { at: usize },
    /// `${{ ... }}` that is not `${{ nodes.NAME.outputs.KEY }}`.
    #[error("malformed output reference `{text}`: expected `${{{{ nodes.NAME.outputs.KEY }}}}`")]
    Malformed { text: String },
    /// `get_attribute ...` that is not `get_attribute NAME:KEY`.
    #[error("malformed `{text}`: expected `get_attribute NAME:KEY`")]
    MalformedGetAttribute { text: String },
}

/// A node's missing output, met while substituting references.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node `{node}` produced no output `{key}`")]
pub struct MissingOutput {
    pub node: String,
    pub key: String,
}

/// A piece of a text: literal, or a reference as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Ref {
        node: &'a str,
        key: &'a str,
        written: &'a str,
    },
}

/// Whether `s` can be an output key: not empty, no whitespace or control
/// characters, none of `:`, `{`, `}`.
pub fn is_valid_name(s: &str) -> bool {
    is_valid_node_name(s) && !s.contains(':')
}

/// Whether `s` can be a node name: as an output key, but `:` is allowed
/// (`web:create`, as gorchestrator's TOSCA client named a template's
/// operations). A reference still reads unambiguously: a key has no `:`, so
/// `get_attribute NAME:KEY` splits at the last one.
pub fn is_valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '{' | '}'))
}

/// Reads the inside of `${{ ... }}`.
fn parse_expression(inner: &str) -> Option<(&str, &str)> {
    let rest = inner.trim().strip_prefix("nodes.")?;
    let at = rest.rfind(".outputs.")?;
    let (node, key) = (&rest[..at], &rest[at + ".outputs.".len()..]);
    (is_valid_node_name(node) && is_valid_name(key)).then_some((node, key))
}

/// Splits `text` into pieces at `${{ }}` references. When `strict`, a
/// malformed reference is an error; otherwise it is kept as text.
pub(crate) fn scan<'a>(
    text: &'a str,
    strict: bool,
    out: &mut dyn FnMut(Piece<'a>),
) -> Result<(), TemplateError> {
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else {
            if strict {
                return Err(TemplateError::Unclosed { at: offset + start });
            }
            break;
        };
        let written = &rest[start..start + OPEN.len() + end + CLOSE.len()];
        match parse_expression(&after[..end]) {
            Some((node, key)) => {
                if start > 0 {
                    out(Piece::Text(&rest[..start]));
                }
                out(Piece::Ref { node, key, written });
            }
            None if strict => {
                return Err(TemplateError::Malformed {
                    text: written.to_owned(),
                });
            }
            None => out(Piece::Text(&rest[..start + written.len()])),
        }
        offset += start + written.len();
        rest = &rest[start + written.len()..];
    }
    if !rest.is_empty() {
        out(Piece::Text(rest));
    }
    Ok(())
}

/// If `value` is `get_attribute ...`, its reference (or `None` if malformed).
fn get_attribute(value: &str) -> Option<Option<(&str, &str)>> {
    let value = value.trim();
    let target = value.strip_prefix(GET_ATTRIBUTE)?;
    if !target.is_empty() && !target.starts_with(char::is_whitespace) {
        return None;
    }
    let parsed = target.trim().rsplit_once(':').and_then(|(node, key)| {
        (is_valid_node_name(node) && is_valid_name(key)).then_some((node, key))
    });
    Some(parsed)
}

/// Splits an arg into pieces: `get_attribute NAME:KEY` as the whole arg or
/// after the first `=`, else `${{ }}` references as in [`scan`].
pub(crate) fn scan_arg<'a>(
    arg: &'a str,
    strict: bool,
    out: &mut dyn FnMut(Piece<'a>),
) -> Result<(), TemplateError> {
    let (prefix, value) = match arg.find('=') {
        Some(eq) if !arg[..eq].trim_start().starts_with(GET_ATTRIBUTE) => {
            (&arg[..=eq], &arg[eq + 1..])
        }
        _ => ("", arg),
    };
    match get_attribute(value) {
        None => scan(arg, strict, out),
        Some(Some((node, key))) => {
            scan(prefix, strict, out)?;
            out(Piece::Ref {
                node,
                key,
                written: value.trim(),
            });
            Ok(())
        }
        Some(None) if strict => Err(TemplateError::MalformedGetAttribute {
            text: value.trim().to_owned(),
        }),
        Some(None) => scan(arg, strict, out),
    }
}

fn collect(
    scanner: impl FnOnce(&mut dyn FnMut(Piece<'_>)) -> Result<(), TemplateError>,
) -> Result<Vec<OutputRef>, TemplateError> {
    let mut refs = Vec::new();
    scanner(&mut |piece| {
        if let Piece::Ref { node, key, .. } = piece {
            refs.push(OutputRef {
                node: node.to_owned(),
                key: key.to_owned(),
            });
        }
    })?;
    Ok(refs)
}

/// The `${{ nodes.NAME.outputs.KEY }}` references in `text`, in order.
pub fn references(text: &str) -> Result<Vec<OutputRef>, TemplateError> {
    if !text.contains(OPEN) {
        return Ok(Vec::new());
    }
    collect(|out| scan(text, true, out))
}

/// The references in an arg: `${{ }}` ones, or `get_attribute NAME:KEY` as
/// the whole arg or as the value after its first `=`.
pub fn arg_references(arg: &str) -> Result<Vec<OutputRef>, TemplateError> {
    if !arg.contains(OPEN) && !arg.contains(GET_ATTRIBUTE) {
        return Ok(Vec::new());
    }
    collect(|out| scan_arg(arg, true, out))
}

fn fill(
    scanner: impl FnOnce(&mut dyn FnMut(Piece<'_>)) -> Result<(), TemplateError>,
    capacity: usize,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<String, MissingOutput> {
    let mut result = String::with_capacity(capacity);
    let mut missing = None;
    // Not strict: scanning cannot fail.
    let _ = scanner(&mut |piece| match piece {
        Piece::Text(text) => result.push_str(text),
        Piece::Ref { node, key, .. } => match lookup(node, key) {
            Some(value) => result.push_str(&value),
            None => {
                missing.get_or_insert_with(|| MissingOutput {
                    node: node.to_owned(),
                    key: key.to_owned(),
                });
            }
        },
    });
    match missing {
        Some(missing) => Err(missing),
        None => Ok(result),
    }
}

/// Replaces each `${{ nodes.NAME.outputs.KEY }}` in `text` with
/// `lookup(NAME, KEY)`. Malformed references are left as written (a
/// validated DAG has none). Fails on the first output `lookup` lacks.
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<String, MissingOutput> {
    if !text.contains(OPEN) {
        return Ok(text.to_owned());
    }
    fill(|out| scan(text, false, out), text.len(), lookup)
}

/// [`substitute`] for an arg, also replacing `get_attribute NAME:KEY` as the
/// whole arg or after its first `=` (`X=get_attribute d:ip` → `X=<value>`).
pub fn substitute_arg(
    arg: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<String, MissingOutput> {
    if !arg.contains(OPEN) && !arg.contains(GET_ATTRIBUTE) {
        return Ok(arg.to_owned());
    }
    fill(|out| scan_arg(arg, false, out), arg.len(), lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(node: &str, key: &str) -> OutputRef {
        OutputRef {
            node: node.into(),
            key: key.into(),
        }
    }

    fn lookup(node: &str, key: &str) -> Option<String> {
        match (node, key) {
            ("fetch", "commit") => Some("abc123".into()),
            ("d", "ip") => Some("10.0.0.1".into()),
            ("a.b", "x.y") => Some("dotted".into()),
            _ => None,
        }
    }

    #[test]
    fn finds_references_with_any_spacing() {
        assert_eq!(
            references("echo ${{ nodes.fetch.outputs.commit }} and ${{nodes.d.outputs.ip}}!"),
            Ok(vec![r("fetch", "commit"), r("d", "ip")])
        );
        assert_eq!(
            references("${{\tnodes.a.b.outputs.x.y  }}"),
            Ok(vec![r("a.b", "x.y")])
        );
        assert_eq!(references("plain ${HOME} $ {{ }}"), Ok(vec![]));
        assert_eq!(references(""), Ok(vec![]));
    }

    #[test]
    fn malformed_references_are_errors() {
        assert_eq!(
            references("x ${{ nodes.a.outputs.b"),
            Err(TemplateError::Unclosed { at: 2 })
        );
        for bad in [
            "${{ }}",
            "${{ nodes.a }}",
            "${{ nodes.a.outputs. }}",
            "${{ nodes..outputs.k }}",
            "${{ steps.a.outputs.k }}",
            "${{ nodes.a b.outputs.k }}",
            "${{ nodes.a.output.k }}",
        ] {
            assert_eq!(
                references(bad),
                Err(TemplateError::Malformed { text: bad.into() }),
                "{bad}"
            );
        }
        let e = references("${{ x }}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed output reference `${{ x }}`: expected `${{ nodes.NAME.outputs.KEY }}`"
        );
        assert_eq!(
            TemplateError::Unclosed { at: 3 }.to_string(),
            "`${{` at byte 3 has no closing `}}`"
        );
    }

    #[test]
    fn get_attribute_in_args() {
        assert_eq!(arg_references("get_attribute d:ip"), Ok(vec![r("d", "ip")]));
        assert_eq!(
            arg_references("ip_address=get_attribute d:ip"),
            Ok(vec![r("d", "ip")])
        );
        assert_eq!(
            arg_references("--x=${{ nodes.fetch.outputs.commit }}"),
            Ok(vec![r("fetch", "commit")])
        );
        assert_eq!(
            arg_references("${{ nodes.fetch.outputs.commit }}=get_attribute d:ip"),
            Ok(vec![r("fetch", "commit"), r("d", "ip")])
        );
        // Not get_attribute: another word, or not at the start of the value.
        assert_eq!(arg_references("get_attributes d:ip"), Ok(vec![]));
        assert_eq!(arg_references("echo get_attribute d:ip"), Ok(vec![]));
        assert_eq!(arg_references("a=b=get_attribute d:ip"), Ok(vec![]));
        // A node name may hold `:`; a key may not, so the last `:` splits them.
        assert_eq!(
            arg_references("IP=get_attribute web:create:ip"),
            Ok(vec![r("web:create", "ip")])
        );
        assert_eq!(
            references("${{ nodes.web:create.outputs.ip }}"),
            Ok(vec![r("web:create", "ip")])
        );
        // Only in args.
        assert_eq!(references("get_attribute d:ip"), Ok(vec![]));
        for bad in [
            "get_attribute",
            "get_attribute d",
            "X=get_attribute d:",
            "get_attribute d:ip x",
        ] {
            assert!(
                matches!(
                    arg_references(bad),
                    Err(TemplateError::MalformedGetAttribute { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn substitutes() {
        assert_eq!(
            substitute("echo ${{ nodes.fetch.outputs.commit }}; ${HOME}", &lookup).unwrap(),
            "echo abc123; ${HOME}"
        );
        assert_eq!(
            substitute("${{nodes.a.b.outputs.x.y}}${{nodes.d.outputs.ip}}", &lookup).unwrap(),
            "dotted10.0.0.1"
        );
        assert_eq!(substitute("no refs", &lookup).unwrap(), "no refs");
        // Malformed ones are left alone.
        assert_eq!(
            substitute("a ${{ x }} b ${{ c", &lookup).unwrap(),
            "a ${{ x }} b ${{ c"
        );
        let e = substitute("${{ nodes.fetch.outputs.nope }}", &lookup).unwrap_err();
        assert_eq!(e.to_string(), "node `fetch` produced no output `nope`");
    }

    #[test]
    fn substitutes_args() {
        assert_eq!(
            substitute_arg("get_attribute d:ip", &lookup).unwrap(),
            "10.0.0.1"
        );
        assert_eq!(
            substitute_arg(" get_attribute  d:ip ", &lookup).unwrap(),
            "10.0.0.1"
        );
        assert_eq!(
            substitute_arg("ip_address=get_attribute d:ip", &lookup).unwrap(),
            "ip_address=10.0.0.1"
        );
        assert_eq!(
            substitute_arg("--c=${{ nodes.fetch.outputs.commit }}", &lookup).unwrap(),
            "--c=abc123"
        );
        assert_eq!(
            substitute_arg("get_attribute d", &lookup).unwrap(),
            "get_attribute d"
        );
        assert_eq!(
            substitute_arg("x=get_attribute d:nope", &lookup),
            Err(MissingOutput {
                node: "d".into(),
                key: "nope".into()
            })
        );
    }

    #[test]
    fn names() {
        assert!(is_valid_name("a.b-c_9"));
        assert!(is_valid_name("héllo"));
        for bad in ["", "a b", "a:b", "a\tb", "a}", "{a", "a\u{0}"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        assert!(is_valid_node_name("web:create"));
        for bad in ["", "a b", "a\tb", "a}", "{a", "a\u{0}"] {
            assert!(!is_valid_node_name(bad), "{bad:?}");
        }
    }
}
