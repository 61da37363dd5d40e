//! The errors of reading a DAG: every problem found, each with where it is.

use std::fmt;

use serde::Serialize;

/// One thing wrong with a DAG file, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DagProblem)]
pub struct Problem {
    /// Where: "node `b`, field `needs`", "digraph", "line 3, column 5", ...
    pub location: String,
    /// What is wrong there.
    pub message: String,
}

impl Problem {
    /// A problem at `location`.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why a DAG file was refused: all its problems, in the order found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DagError {
    /// Never empty.
    pub problems: Vec<Problem>,
}

impl fmt::Display for DagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl From<Problem> for DagError {
    fn from(problem: Problem) -> Self {
        DagError {
            problems: vec![problem],
        }
    }
}
