//! A streaming parser of TAP (13 and 14): node's test runner with nested subtests and YAML diagnostics, and plain TAP from other runners.
//!
//! Feed it the test process's standard output one line at a time with
//! [`Parser::line`]; it hands back each test the moment its result is
//! complete (a test point is complete when the line after it is not the start
//! of its YAML block, or when its YAML block ends). Lines that are not TAP
//! (npm's banner, a program's own chatter) are ignored.
//!
//! Nesting follows indentation (four spaces per level, as TAP 14 and node
//! write it). The subtests of a test come before its own test point; node
//! names the parent beforehand with `# Subtest: <name>`, plain TAP only in the
//! parent's test point, so [`Parser::results`] fills parent paths in once the
//! parent is known.

use std::collections::HashMap;

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `ok`.
    Passed,
    /// `not ok` without a TODO directive.
    Failed,
    /// A SKIP directive.
    Skipped,
    /// A TODO directive (a failing TODO test does not fail the run).
    Todo,
}

impl Status {
    /// The lower-case name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Todo => "todo",
        }
    }
}

/// One test point.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// The test's own name.
    pub name: String,
    /// The names of its parents, outermost first; `None` where the parent
    /// is not known yet (plain TAP, before the parent's test point).
    pub path: Vec<Option<String>>,
    /// How it ended.
    pub status: Status,
    /// `duration_ms` from its YAML diagnostics.
    pub duration_ms: Option<f64>,
    /// Why it failed (`error` or `message` in its diagnostics), or the
    /// reason of its SKIP/TODO directive.
    pub message: Option<String>,
    /// Whether it has subtests (a suite, or a test with `t.test`).
    pub group: bool,
    /// Whether it counts in the totals: every test without subtests, and a
    /// group that failed while none of its subtests did (a failing hook).
    pub counted: bool,
    children: Vec<usize>,
}

impl TestResult {
    /// `parent > child > name`, with `?` for a parent not known.
    pub fn full_name(&self) -> String {
        let mut parts: Vec<&str> = self
            .path
            .iter()
            .map(|p| p.as_deref().unwrap_or("?"))
            .collect();
        parts.push(&self.name);
        parts.join(" > ")
    }
}

/// Counts of the counted tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub todo: usize,
}

impl Totals {
    /// All counted tests.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped + self.todo
    }
}

/// A test point whose YAML block may still follow.
struct Pending {
    depth: usize,
    indent: usize,
    result: TestResult,
    yaml: Option<Vec<String>>,
}

/// The parser's state; see the module documentation.
#[derive(Default)]
pub struct Parser {
    results: Vec<TestResult>,
    pending: Option<Pending>,
    /// `# Subtest:` names by depth, for the tests below them.
    names: Vec<Option<String>>,
    /// Per depth, the results at that depth whose parent has not ended.
    open: Vec<Vec<usize>>,
    bail_out: Option<String>,
    saw_tap: bool,
}

impl Parser {
    /// A parser that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line of output (with or without its line ending) and
    /// returns the tests it completed.
    pub fn line(&mut self, raw: &str) -> Vec<TestResult> {
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let mut done = Vec::new();
        let indent = indentation(raw);
        if let Some(pending) = &mut self.pending
            && let Some(yaml) = &mut pending.yaml
        {
            if raw.trim() == "..." {
                done.extend(self.complete());
                return done;
            }
            // A block never closed: a line left of it is TAP again.
            if raw.trim().is_empty() || indent > pending.indent {
                yaml.push(raw.to_string());
                return done;
            }
            done.extend(self.complete());
        }
        let content = raw.trim();
        if let Some(pending) = &mut self.pending {
            if content == "---" && indent >= pending.indent {
                pending.yaml = Some(Vec::new());
                return done;
            }
            done.extend(self.complete());
        }
        if self.bail_out.is_some() {
            return done;
        }
        let depth = indent / 4;
        if let Some(reason) = content.strip_prefix("Bail out!") {
            self.saw_tap = true;
            self.bail_out = Some(reason.trim().to_string());
        } else if let Some(name) = content.strip_prefix("# Subtest:") {
            self.names.truncate(depth);
            self.names.resize(depth, None);
            self.names.push(Some(unescape(name.trim())));
        } else if let Some(point) = test_point(content) {
            self.saw_tap = true;
            let mut path = self.names.clone();
            path.resize(depth, None);
            self.pending = Some(Pending {
                depth,
                indent,
                result: TestResult {
                    name: point.name,
                    path,
                    status: point.status,
                    duration_ms: None,
                    message: point.reason,
                    group: false,
                    counted: true,
                    children: Vec::new(),
                },
                yaml: None,
            });
        } else if content.starts_with("TAP version") || is_plan(content) {
            self.saw_tap = true;
        }
        done
    }

    /// Ends the input: completes a test point still waiting for its YAML.
    pub fn finish(&mut self) -> Vec<TestResult> {
        self.complete().into_iter().collect()
    }

    /// The reason given by `Bail out!`, if the producer gave up.
    pub fn bail_out(&self) -> Option<&str> {
        self.bail_out.as_deref()
    }

    /// Whether any TAP was seen at all (a version line, plan, test point or
    /// bail out).
    pub fn saw_tap(&self) -> bool {
        self.saw_tap
    }

    /// Every test so far, in the order their results completed, with the
    /// parent paths known by now.
    pub fn results(&self) -> &[TestResult] {
        &self.results
    }

    /// Counts of the counted tests so far.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for result in self.results.iter().filter(|r| r.counted) {
            match result.status {
                Status::Passed => totals.passed += 1,
                Status::Failed => totals.failed += 1,
                Status::Skipped => totals.skipped += 1,
                Status::Todo => totals.todo += 1,
            }
        }
        totals
    }

    /// Completes the pending test point: its diagnostics, its subtests.
    fn complete(&mut self) -> Option<TestResult> {
        let Pending {
            depth,
            mut result,
            yaml,
            ..
        } = self.pending.take()?;
        if let Some(lines) = yaml {
            let fields = parse_yaml(&lines);
            result.duration_ms = fields.get("duration_ms").and_then(|d| d.parse().ok());
            if result.status == Status::Failed {
                let message = fields
                    .get("error")
                    .or_else(|| fields.get("message"))
                    .filter(|m| !m.is_empty());
                if let Some(message) = message {
                    result.message = Some(message.clone());
                }
            }
        }
        let children = self
            .open
            .get_mut(depth + 1)
            .map(std::mem::take)
            .unwrap_or_default();
        if !children.is_empty() {
            result.group = true;
            let child_failed = children
                .iter()
                .any(|&c| self.results[c].status == Status::Failed);
            result.counted = result.status == Status::Failed && !child_failed;
            self.name_descendants(&children, depth, &result.name);
            result.children = children;
        }
        let index = self.results.len();
        self.results.push(result.clone());
        if self.open.len() <= depth {
            self.open.resize(depth + 1, Vec::new());
        }
        self.open[depth].push(index);
        self.names.truncate(depth);
        Some(result)
    }

    /// Fills in `name` at `depth` in the paths of `children` and their
    /// descendants where it was not known.
    fn name_descendants(&mut self, children: &[usize], depth: usize, name: &str) {
        let mut stack = children.to_vec();
        while let Some(i) = stack.pop() {
            let result = &mut self.results[i];
            if let Some(slot @ None) = result.path.get_mut(depth) {
                *slot = Some(name.to_string());
            }
            stack.extend(result.children.iter().copied());
        }
    }
}

/// Leading spaces (a tab counts as four).
fn indentation(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// `line` without up to `width` columns of leading indentation.
fn strip_indent(line: &str, width: usize) -> &str {
    let mut columns = 0;
    for (i, c) in line.char_indices() {
        if columns >= width || !(c == ' ' || c == '\t') {
            return &line[i..];
        }
        columns += if c == '\t' { 4 } else { 1 };
    }
    ""
}

fn is_plan(content: &str) -> bool {
    content
        .strip_prefix("1..")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

struct Point {
    name: String,
    status: Status,
    reason: Option<String>,
}

/// Parses `ok 3 - name # SKIP reason` and `not ok 2 name`.
fn test_point(content: &str) -> Option<Point> {
    let (ok, rest) = if let Some(rest) = content.strip_prefix("not ok") {
        (false, rest)
    } else if let Some(rest) = content.strip_prefix("ok") {
        (true, rest)
    } else {
        return None;
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (description, directive) = split_directive(rest);
    let name = match unescape(description.trim()) {
        name if name.is_empty() => "(unnamed)".to_string(),
        name => name,
    };
    let mut status = if ok { Status::Passed } else { Status::Failed };
    let mut reason = None;
    if let Some(directive) = directive {
        let directive = directive.trim();
        let word: String = directive
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_lowercase();
        let after = directive[word.len()..].trim();
        let kind = if word.starts_with("skip") {
            Some(Status::Skipped)
        } else if word == "todo" {
            Some(Status::Todo)
        } else {
            None
        };
        if let Some(kind) = kind {
            status = kind;
            reason = (!after.is_empty()).then(|| after.to_string());
        }
    }
    Some(Point {
        name,
        status,
        reason,
    })
}

/// Splits a description at its first unescaped `#`.
fn split_directive(text: &str) -> (&str, Option<&str>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'#' => return (&text[..i], Some(&text[i + 1..])),
            _ => i += 1,
        }
    }
    (text, None)
}

/// Undoes TAP's `\#` and `\\` escapes in names.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next @ ('#' | '\\')) => out.push(next),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The scalar fields at the top level of a YAML diagnostics block: plain,
/// single- and double-quoted values and `|`/`>` block scalars. Nested
/// mappings and sequences are skipped.
fn parse_yaml(lines: &[String]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    let Some(base) = lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| indentation(l))
    else {
        return fields;
    };
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        if line.trim().is_empty() || indentation(line) != base {
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let key = key.trim().to_string();
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let mut block = Vec::new();
            while i < lines.len() && (lines[i].trim().is_empty() || indentation(&lines[i]) > base) {
                block.push(lines[i].as_str());
                i += 1;
            }
            let inner = block
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| indentation(l))
                .min()
                .unwrap_or(0);
            let texts: Vec<&str> = block.iter().map(|l| strip_indent(l, inner)).collect();
            let joined = if value.starts_with('>') {
                texts.join(" ")
            } else {
                texts.join("\n")
            };
            fields.insert(key, joined.trim_end().to_string());
        } else if let Some(quoted) = value.strip_prefix('\'') {
            let inner = quoted.strip_suffix('\'').unwrap_or(quoted);
            fields.insert(key, inner.replace("''", "'"));
        } else if let Some(quoted) = value.strip_prefix('"') {
            let inner = quoted.strip_suffix('"').unwrap_or(quoted);
            fields.insert(key, unescape_double(inner));
        } else if !value.is_empty() {
            fields.insert(key, value.to_string());
        }
    }
    fields
}

/// The escapes of a YAML double-quoted scalar that test runners write.
fn unescape_double(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds all of `text`; returns the parser and the names in the order
    /// they were reported.
    fn parse(text: &str) -> (Parser, Vec<String>) {
        let mut parser = Parser::new();
        let mut order = Vec::new();
        for line in text.lines() {
            order.extend(parser.line(line).into_iter().map(|r| r.full_name()));
        }
        order.extend(parser.finish().into_iter().map(|r| r.full_name()));
        (parser, order)
    }

    fn find<'a>(parser: &'a Parser, name: &str) -> &'a TestResult {
        parser
            .results()
            .iter()
            .find(|r| r.full_name() == name)
            .unwrap_or_else(|| panic!("no test {name:?} in {:#?}", parser.results()))
    }

    /// What node 20's runner prints with `--test-reporter=tap` (trimmed).
    const NODE: &str = "\
> sample-tests@1.2.3 test
> node --test

TAP version 13
# Subtest: adds
ok 1 - adds
  ---
  duration_ms: 5.835784
  ...
# Subtest: fails
not ok 2 - fails
  ---
  duration_ms: 1.596401
  location: '/tmp/npmt/pkg/test.js:4:1'
  failureType: 'testCodeFailure'
  error: |-
    Expected values to be strictly equal:

    2 !== 3

  code: 'ERR_ASSERTION'
  expected: 3
  stack: |-
    TestContext.<anonymous> (/tmp/npmt/pkg/test.js:4:30)
  ...
# Subtest: skipped
ok 3 - skipped # SKIP not today
  ---
  duration_ms: 0.141211
  ...
# Subtest: todo one
ok 4 - todo one # TODO
  ---
  duration_ms: 0.102063
  ...
# Subtest: outer
    # Subtest: inner ok
    ok 1 - inner ok
      ---
      duration_ms: 0.176383
      ...
    # Subtest: inner bad
    not ok 2 - inner bad
      ---
      duration_ms: 0.128803
      failureType: 'testCodeFailure'
      error: |-
        line one
        line two
      code: 'ERR_TEST_FAILURE'
      ...
    1..2
not ok 5 - outer
  ---
  duration_ms: 0.889276
  failureType: 'subtestsFailed'
  error: '1 subtest failed'
  ...
# Subtest: suite
    # Subtest: it works
    ok 1 - it works
      ---
      duration_ms: 0.099108
      ...
    1..1
ok 6 - suite
  ---
  duration_ms: 0.398614
  type: 'suite'
  ...
1..6
# tests 8
# pass 3
";

    #[test]
    fn node_runner_with_nested_subtests_and_diagnostics() {
        let (parser, order) = parse(NODE);
        assert_eq!(
            order,
            [
                "adds",
                "fails",
                "skipped",
                "todo one",
                "outer > inner ok",
                "outer > inner bad",
                "outer",
                "suite > it works",
                "suite"
            ]
        );
        assert_eq!(
            parser.totals(),
            Totals {
                passed: 3,
                failed: 2,
                skipped: 1,
                todo: 1
            }
        );
        let adds = find(&parser, "adds");
        assert_eq!(adds.status, Status::Passed);
        assert_eq!(adds.duration_ms, Some(5.835784));
        assert!(adds.message.is_none() && adds.counted && !adds.group);
        let fails = find(&parser, "fails");
        assert_eq!(fails.status, Status::Failed);
        assert_eq!(
            fails.message.as_deref(),
            Some("Expected values to be strictly equal:\n\n2 !== 3")
        );
        let skipped = find(&parser, "skipped");
        assert_eq!(skipped.status, Status::Skipped);
        assert_eq!(skipped.message.as_deref(), Some("not today"));
        assert_eq!(find(&parser, "todo one").status, Status::Todo);
        let inner = find(&parser, "outer > inner bad");
        assert_eq!(inner.path, [Some("outer".to_string())]);
        assert_eq!(inner.message.as_deref(), Some("line one\nline two"));
        let outer = find(&parser, "outer");
        assert!(outer.group && !outer.counted, "{outer:?}");
        assert_eq!(outer.message.as_deref(), Some("1 subtest failed"));
        assert!(find(&parser, "suite").group);
        assert!(parser.saw_tap() && parser.bail_out().is_none());
    }

    #[test]
    fn each_test_is_reported_once_its_diagnostics_end() {
        let mut parser = Parser::new();
        assert!(parser.line("ok 1 - quick").is_empty());
        assert!(parser.line("  ---").is_empty());
        assert!(parser.line("  duration_ms: 1.5").is_empty());
        let done = parser.line("  ...");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].duration_ms, Some(1.5));
        // Without diagnostics, the next line completes it.
        assert!(parser.line("ok 2 - bare").is_empty());
        assert_eq!(parser.line("# Subtest: slow")[0].name, "bare");
        assert!(parser.finish().is_empty());
    }

    #[test]
    fn plain_tap_with_directives_and_late_parent_names() {
        let text = "\
TAP version 14
1..5
ok 1 - first
not ok 2 - second
  ---
  message: \"boom\\nagain\"
  severity: fail
  data:
    got: 1
  ...
ok 3 # skip no database
not ok 4 - later # TODO not written
    ok 1 - child a
    not ok 2 - child b
    1..2
not ok 5 - parent
ok 6 - name with \\# hash
";
        let (parser, order) = parse(text);
        assert_eq!(
            order,
            [
                "first",
                "second",
                "(unnamed)",
                "later",
                "? > child a",
                "? > child b",
                "parent",
                "name with # hash"
            ]
        );
        assert_eq!(
            find(&parser, "second").message.as_deref(),
            Some("boom\nagain")
        );
        let skip = &parser.results()[2];
        assert_eq!(skip.status, Status::Skipped);
        assert_eq!(skip.message.as_deref(), Some("no database"));
        let later = find(&parser, "later");
        assert_eq!(later.status, Status::Todo);
        assert_eq!(later.message.as_deref(), Some("not written"));
        // Once the parent's test point came, its children carry its name.
        assert_eq!(find(&parser, "parent > child b").status, Status::Failed);
        assert!(!find(&parser, "parent").counted);
        assert_eq!(
            parser.totals(),
            Totals {
                passed: 3,
                failed: 2,
                skipped: 1,
                todo: 1
            }
        );
    }

    #[test]
    fn a_group_failing_by_itself_counts_as_a_failure() {
        let text = "\
# Subtest: hooks
    # Subtest: fine
    ok 1 - fine
    1..1
not ok 1 - hooks
  ---
  error: 'before hook failed'
  ...
";
        let (parser, _) = parse(text);
        let hooks = find(&parser, "hooks");
        assert!(hooks.group && hooks.counted);
        assert_eq!(parser.totals().failed, 1);
        assert_eq!(parser.totals().passed, 1);
    }

    #[test]
    fn an_unterminated_yaml_block_ends_at_the_next_test_point() {
        let (parser, order) = parse("not ok 1 - a\n  ---\n  message: 'x'\nok 2 - b\n");
        assert_eq!(order, ["a", "b"]);
        assert_eq!(parser.results()[0].message.as_deref(), Some("x"));
    }

    #[test]
    fn bail_out_stops_parsing() {
        let (parser, order) =
            parse("TAP version 13\nok 1 - one\nBail out! database is down\nok 2 - two\n");
        assert_eq!(order, ["one"]);
        assert_eq!(parser.bail_out(), Some("database is down"));
        assert_eq!(parser.totals().total(), 1);
    }

    #[test]
    fn other_output_is_not_tap() {
        let (parser, order) = parse("hello\nokay then\n  not okay\n# just a comment\n");
        assert!(order.is_empty());
        assert!(!parser.saw_tap());
    }

    #[test]
    fn yaml_scalars() {
        let lines: Vec<String> = [
            "  a: 'it''s'",
            "  b: plain text",
            "  c: >-",
            "    folded",
            "    line",
            "  nested:",
            "    x: 1",
            "  d: \"tab\\there \\u00e9\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let fields = parse_yaml(&lines);
        assert_eq!(fields["a"], "it's");
        assert_eq!(fields["b"], "plain text");
        assert_eq!(fields["c"], "folded line");
        assert_eq!(fields["d"], "tab\there é");
        assert!(!fields.contains_key("nested") && !fields.contains_key("x"));
    }
}
