//! The npm-test driver's TAP parser, fed a test process's output line by line as the driver does.

#![no_main]

use drover_plugin_npm_test::tap::{Parser, TestResult};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The driver reads lines as text, replacing what is not UTF-8.
    let text = String::from_utf8_lossy(data);
    let (parser, streamed) = feed(text.split_inclusive('\n'));
    let results = parser.results();
    // Every test is handed out once, as it completes.
    assert_eq!(streamed.len(), results.len());
    for (handed, kept) in streamed.iter().zip(results) {
        assert_eq!(handed.name, kept.name);
        assert_eq!(handed.status, kept.status);
    }
    for result in results {
        assert!(!result.name.is_empty(), "a test with no name");
        let full = result.full_name();
        assert!(full.ends_with(&result.name));
    }
    let totals = parser.totals();
    assert_eq!(
        totals.total(),
        results.iter().filter(|r| r.counted).count(),
        "totals miss counted tests"
    );
    if !results.is_empty() || parser.bail_out().is_some() {
        assert!(parser.saw_tap());
    }
    // Windows line endings, and lines handed over without their ending,
    // read the same (compared where the text has no carriage return of
    // its own, which would be part of a line's content).
    if !text.contains('\r') {
        let (crlf, _) = feed(text.replace('\n', "\r\n").split_inclusive('\n'));
        assert_eq!(
            debug(crlf.results()),
            debug(results),
            "CRLF endings read differently"
        );
        let (bare, _) = feed(text.split('\n'));
        assert_eq!(
            debug(bare.results()),
            debug(results),
            "lines without endings read differently"
        );
    }
});

fn feed<'a>(lines: impl Iterator<Item = &'a str>) -> (Parser, Vec<TestResult>) {
    let mut parser = Parser::new();
    let mut streamed = Vec::new();
    for line in lines {
        streamed.extend(parser.line(line));
    }
    streamed.extend(parser.finish());
    (parser, streamed)
}

/// Results compared as text: a `duration_ms` of NaN equals itself there.
fn debug(results: &[TestResult]) -> String {
    format!("{results:?}")
}
