//! Third-party parsers that panic on bad input (instead of returning an error) run under
//! [`catch_third_party`]: the panic becomes the caller's clean error, and the binary's panic hook
//! stays silent for it (it asks [`panic_is_expected`]), so no library's panic text reaches the
//! user's terminal.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static EXPECTING: Cell<u32> = const { Cell::new(0) };
}

/// Runs `parse`, catching a panic in it.
pub fn catch_third_party<R>(parse: impl FnOnce() -> R) -> std::thread::Result<R> {
    EXPECTING.with(|e| e.set(e.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(parse));
    EXPECTING.with(|e| e.set(e.get() - 1));
    result
}

/// What a panic said (its payload is a `&str` or a `String` when it said anything).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

/// Whether a panic on this thread happens inside [`catch_third_party`] (a panic hook reads it).
pub fn panic_is_expected() -> bool {
    EXPECTING.with(|e| e.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_expected_only_inside() {
        assert!(!panic_is_expected());
        let seen = catch_third_party(|| panic_is_expected());
        assert_eq!(seen.ok(), Some(true));
        assert!(catch_third_party(|| panic!("bad file")).is_err());
        assert!(!panic_is_expected());
    }
}
