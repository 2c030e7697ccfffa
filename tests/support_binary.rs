//! The tests' one way of running the binary (tests/support/binary.rs) keeps its promise: a run
//! that cannot end by itself is killed at its deadline, never left to hang the suite, and `run`
//! then fails the test naming the command. Nothing here depends on the machine's speed: the run
//! below cannot end before the tool's own 10-minute --timeout, so the deadline always comes first.

mod support;

use std::time::Duration;

/// `check -f -` reads stdin to its end, and a pipe held open never ends.
fn endless() -> support::Cmd {
    support::cmd()
        .args(["check", "-f", "-"])
        .stdin_open()
        .deadline(Duration::from_secs(1))
}

#[test]
fn a_run_that_cannot_end_is_killed_at_its_deadline() {
    assert!(endless().run_within().is_none());
}

#[test]
#[should_panic(expected = "`mlsdm-audit check -f -` did not end within 1s and was killed")]
fn a_killed_run_fails_its_test_naming_the_command() {
    endless().run();
}
