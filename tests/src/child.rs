//! A child process that cannot outlive its test.

use std::io;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, ExitStatus, Output};

/// A spawned child (e.g. `run --continuous`) that is SIGKILLed and reaped when the guard is
/// dropped while it still runs — also when a failed assertion unwinds the test, which would
/// otherwise leave the process running (and holding the pipeline's lock and the temp dir).
/// Derefs to [`Child`] for `id`, `kill`, `wait`, `try_wait`, `stdout`, `stderr`.
pub struct ChildGuard {
    /// Always `Some` but inside [`ChildGuard::wait_with_output`], which must move it out.
    child: Option<Child>,
    /// Started as the leader of its own process group ([`ChildGuard::spawn_group`]): signals
    /// and the kill on drop go to the whole group (e.g. a shell and what it started).
    group: bool,
}

impl ChildGuard {
    /// Spawns `command` under a guard; panics if it cannot start (a test cannot go on).
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self::from(child)
    }

    /// Spawns `command` as the leader of a new process group, so that [`signal`](Self::signal)
    /// and the drop reach everything it starts (a `sh -c "a & b"` line, say).
    pub fn spawn_group(command: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        let mut guard = Self::spawn(command.process_group(0));
        guard.group = true;
        guard
    }

    /// Sends `signal` (e.g. `-TERM`) to the child, or to its whole group.
    pub fn signal(&self, signal: &str) -> io::Result<ExitStatus> {
        let target = match self.group {
            true => format!("-{}", self.id()),
            false => self.id().to_string(),
        };
        Command::new("kill").args([signal, "--", &target]).status()
    }

    /// Sends SIGTERM, the graceful stop a continuous run handles (finish the batch, commit,
    /// exit 0), with `kill(1)` as an operator would (the crate has no unsafe `libc::kill`);
    /// returns `kill`'s own status.
    pub fn sigterm(&self) -> io::Result<ExitStatus> {
        self.signal("-TERM")
    }

    /// Waits for the child to exit and collects its piped stdout and stderr, as
    /// [`Child::wait_with_output`] does; nothing is left to kill afterwards.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        self.child
            .take()
            .expect("the guard holds its child until here")
            .wait_with_output()
    }
}

impl From<Child> for ChildGuard {
    /// Guards a child spawned elsewhere.
    fn from(child: Child) -> Self {
        Self {
            child: Some(child),
            group: false,
        }
    }
}

impl Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.child
            .as_ref()
            .expect("the guard holds its child until it is consumed")
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the guard holds its child until it is consumed")
    }
}

impl Drop for ChildGuard {
    /// SIGKILL (not SIGTERM: a test that failed need not wait for a graceful stop) and reap,
    /// unless the child has exited already; errors are moot while tearing down.
    fn drop(&mut self) {
        if self.group && self.child.is_some() {
            // The leader may be gone while what it started still runs.
            let _ = self.signal("-KILL");
        }
        if let Some(child) = self.child.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a process with this pid exists (`kill -0`).
    fn alive(pid: u32) -> bool {
        Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("kill runs")
            .success()
    }

    #[test]
    fn a_dropped_guard_kills_and_reaps_its_child() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("60"));
        let pid = guard.id();
        assert!(alive(pid));
        drop(guard);
        assert!(!alive(pid), "sleep {pid} outlived its guard");
    }

    #[test]
    fn a_panicking_test_does_not_leave_its_child_running() {
        let (tx, rx) = std::sync::mpsc::channel();
        let unwound = std::thread::spawn(move || {
            let guard = ChildGuard::spawn(Command::new("sleep").arg("60"));
            tx.send(guard.id()).expect("send the pid");
            panic!("a failed assertion");
        })
        .join();
        assert!(unwound.is_err());
        let pid = rx.recv().expect("the pid");
        assert!(!alive(pid), "sleep {pid} outlived the panic");
    }

    #[test]
    fn a_child_that_exited_is_waited_for_as_usual() {
        let mut guard = ChildGuard::spawn(&mut Command::new("true"));
        assert!(guard.wait().expect("wait").success());
        let out = ChildGuard::spawn(
            Command::new("echo")
                .arg("hi")
                .stdout(std::process::Stdio::piped()),
        )
        .wait_with_output()
        .expect("output");
        assert_eq!(out.stdout, b"hi\n");
    }
}
