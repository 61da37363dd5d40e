//! A budget of values per read, so that YAML aliases cannot expand a small text into a huge tree.
//!
//! serde_yaml_ng expands every alias in full while it deserializes, and its
//! own guard counts jumps, not what they expand to: 30 KB of nested aliases
//! grow into tens of millions of values (seconds of CPU, a gigabyte). Text
//! without aliases holds fewer list items and mapping entries than it has
//! bytes, since each needs at least an indicator or a character of its own,
//! and its strings hold fewer bytes than it does; so a read that meets more
//! items plus string bytes than twice the text is expanding aliases, and is
//! stopped there. The budget lives in a thread-local because serde's visitors
//! cannot be handed one without a seed at every level.

use std::cell::Cell;

use serde::de;

thread_local! {
    /// Values this thread's read may still visit; `u64::MAX` when no read
    /// is budgeted (JSON, which has no aliases).
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// What the reader says when the budget runs out.
pub(super) const EXPANDS: &str = "YAML aliases (`*name`) expand this text into more values than \
     it holds: a DAG never needs anchors and aliases, write the values out";

/// The budget for a text of `len` bytes: twice its length, with room for
/// the smallest files.
pub(super) fn for_text(len: usize) -> u64 {
    u64::try_from(len)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(64)
}

/// Sets this thread's budget until the returned guard is dropped.
pub(super) fn start(values: u64) -> Reset {
    LEFT.with(|left| left.set(values));
    Reset
}

/// Lifts the budget when dropped, so a later read on the thread is not
/// charged for this one.
pub(super) struct Reset;

impl Drop for Reset {
    fn drop(&mut self) {
        LEFT.with(|left| left.set(u64::MAX));
    }
}

/// Spends one value of the budget: call once per list item or mapping entry.
pub(super) fn spend<E: de::Error>() -> Result<(), E> {
    charge(1)
}

/// Spends the bytes of a string about to be copied: an alias to one long
/// string costs a single item but copies all of it.
pub(super) fn spend_str<E: de::Error>(text: &str) -> Result<(), E> {
    charge(u64::try_from(text.len()).unwrap_or(u64::MAX))
}

fn charge<E: de::Error>(cost: u64) -> Result<(), E> {
    LEFT.with(|left| match left.get() {
        u64::MAX => Ok(()),
        n if n < cost || n == 0 => Err(E::custom(EXPANDS)),
        n => {
            left.set(n - cost);
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_out_and_resets() {
        {
            let _budget = start(2);
            assert!(spend::<de::value::Error>().is_ok());
            assert!(spend::<de::value::Error>().is_ok());
            let e = spend::<de::value::Error>().unwrap_err();
            assert_eq!(e.to_string(), EXPANDS);
        }
        for _ in 0..10 {
            assert!(spend::<de::value::Error>().is_ok());
        }
    }

    #[test]
    fn strings_cost_their_length() {
        let _budget = start(5);
        assert!(spend_str::<de::value::Error>("abc").is_ok());
        assert!(spend_str::<de::value::Error>("abc").is_err());
        assert!(spend_str::<de::value::Error>("ab").is_ok());
    }
}
