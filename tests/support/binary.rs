//! The one way a test runs the built `mlsdm-audit`: `run(args)`, or `cmd()` to add environment,
//! stdin, a directory or a deadline. Every run starts from the same hermetic defaults (the
//! package root as directory, `NO_COLOR=1`, no `KUBECONFIG`, stdin closed), reads both pipes
//! while it waits (a report larger than a pipe's buffer would otherwise block the child), and is
//! killed at a deadline so a hung run fails its test instead of hanging the suite. The deadline
//! is an upper bound only: nothing here asserts how fast a run is.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_mlsdm-audit");

/// Far beyond any single run here (seconds, minutes on a loaded machine): it only stops a hung
/// one.
pub const DEADLINE: Duration = Duration::from_mins(10);

/// The directory holding the binary, for tests that put it first on a shell's PATH.
pub fn bin_dir() -> &'static Path {
    Path::new(BIN).parent().unwrap()
}

/// Runs the binary with `args` and the defaults; panics if it is still running at the deadline.
pub fn run<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    cmd().args(args).run()
}

/// A run of the binary to configure before `run`, `run_within` or `spawn`.
pub fn cmd() -> Cmd {
    let mut command = Command::new(BIN);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        // The developer's cluster is never a test's input: a test that wants one names it.
        .env_remove("KUBECONFIG");
    // Nor their proxy: every server a test talks to is on 127.0.0.1.
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(var);
    }
    Cmd {
        command,
        shown: String::from("mlsdm-audit"),
        stdin: Input::Closed,
        stdout: None,
        deadline: DEADLINE,
    }
}

enum Input {
    Closed,
    Bytes(Vec<u8>),
    /// A pipe nothing is written to and that stays open until the run ends.
    Open,
}

pub struct Cmd {
    command: Command,
    /// The command line, for failure messages.
    shown: String,
    stdin: Input,
    /// Where stdout goes instead of a pipe the test reads (a file, /dev/full).
    stdout: Option<std::fs::File>,
    deadline: Duration,
}

impl Cmd {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push(' ');
        self.shown.push_str(&arg.as_ref().to_string_lossy());
        self.command.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(self, args: impl IntoIterator<Item = S>) -> Self {
        args.into_iter().fold(self, Cmd::arg)
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.command.envs(vars);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.command.current_dir(dir.into());
        self
    }

    /// Feeds `input` on stdin, then closes it.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Input::Bytes(input.into());
        self
    }

    /// Gives the run a stdin that never ends: nothing is written and it stays open.
    pub fn stdin_open(mut self) -> Self {
        self.stdin = Input::Open;
        self
    }

    /// Sends stdout to `file` instead of a pipe; the run's output then has an empty stdout.
    pub fn stdout_to(mut self, file: std::fs::File) -> Self {
        self.stdout = Some(file);
        self
    }

    /// Replaces the default deadline (an upper bound that only stops a hung run).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Runs to the end; a run still going at the deadline is killed and fails the test with
    /// what it printed so far.
    pub fn run(self) -> Output {
        let (shown, deadline) = (self.shown.clone(), self.deadline);
        self.finish().unwrap_or_else(|out| {
            panic!(
                "`{shown}` did not end within {deadline:?} and was killed\n--- stdout\n{}--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Runs to the end, or kills the run at the deadline and returns None: for tests whose
    /// subject is that a run ends.
    pub fn run_within(self) -> Option<Output> {
        self.finish().ok()
    }

    /// Starts the run with stdout and stderr piped, for a test that reads it as it goes or
    /// signals it; that test waits for it (no deadline applies here).
    pub fn spawn(mut self) -> Child {
        let stdin = match self.stdin {
            Input::Closed => Stdio::null(),
            Input::Bytes(_) | Input::Open => Stdio::piped(),
        };
        let mut child = self
            .command
            .stdin(stdin)
            .stdout(self.stdout.map_or_else(Stdio::piped, Stdio::from))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start `{}`: {e}", self.shown));
        if let Input::Bytes(input) = self.stdin {
            feed(child.stdin.take().unwrap(), input);
        }
        child
    }

    /// The output when the run ended by itself, else (killed at the deadline) what it printed.
    fn finish(self) -> Result<Output, Output> {
        let deadline = self.deadline;
        let open = matches!(self.stdin, Input::Open);
        let mut child = self.spawn();
        // Held, unwritten, until the run ends: dropping it would close the stream.
        let _stdin: Option<ChildStdin> = if open { child.stdin.take() } else { None };
        let stdout = child.stdout.take().map(drain);
        let stderr = drain(child.stderr.take().unwrap());
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let (status, ended) = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break (status, true);
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                break (child.wait().unwrap(), false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let out = Output {
            status,
            stdout: stdout.map(|s| s.join().unwrap()).unwrap_or_default(),
            stderr: stderr.join().unwrap(),
        };
        if ended { Ok(out) } else { Err(out) }
    }
}

/// Writes `input` to the child's stdin on its own thread, then closes it. The tool may stop
/// reading early (a size cap): a broken pipe is its answer, not a test failure.
fn feed(mut stdin: ChildStdin, input: Vec<u8>) {
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
}

/// Reads a pipe to its end on its own thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}
