//! A real `mlflow server` for the registry tests: 127.0.0.1, a free port, a fresh data dir
//! (sqlite backend store, proxied artifacts), `--workers 1` and no job execution so it starts
//! in seconds. Optionally with the basic-auth app and an admin password.
//!
//! The server runs in its own process group, watched by a small shell loop that stops the
//! group when the test process is gone, so a server shared through a `static` (never
//! dropped) does not outlive its tests.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{ChildGuard, eventually_with};
use std::time::Duration;

/// The `mlflow` executable: `$ISOLAKE_MLFLOW`, else the venv `.ci/run` creates. Fails (never
/// skips) when it is missing, saying how to get it.
pub fn mlflow() -> PathBuf {
    crate::installed_tool(
        "ISOLAKE_MLFLOW",
        "venv-mlflow/bin/mlflow",
        "the MLflow tests need a real MLflow server",
    )
}

/// A running MLflow server; killed (its whole process group) on drop or when the test
/// process exits.
pub struct MlflowServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory (backend store, artifacts, auth database, log).
    pub dir: tempfile::TempDir,
    /// Guarded, so that a panic before the watchdog runs does not leave the server behind.
    server: ChildGuard,
    watchdog: Child,
}

/// An MLflow 2 `mlflow` executable (`$ISOLAKE_MLFLOW2`, else the venv `.ci/run` creates): a
/// server without MLflow 3's logged models, for the tests that older servers keep working.
pub fn mlflow2() -> PathBuf {
    crate::installed_tool(
        "ISOLAKE_MLFLOW2",
        "venv-mlflow2/bin/mlflow",
        "the MLflow 2 test needs a real MLflow 2 server",
    )
}

impl MlflowServer {
    /// Starts a server; with `admin_password`, the basic-auth app with user `admin`.
    pub fn start(admin_password: Option<&str>) -> Self {
        Self::start_with(&mlflow(), admin_password)
    }

    /// [`start`](Self::start) with another `mlflow` executable (e.g. [`mlflow2`]).
    pub fn start_with(mlflow: &std::path::Path, admin_password: Option<&str>) -> Self {
        let mlflow = mlflow.to_path_buf();
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = crate::free_port();
        let d = dir.path();
        let mut args = vec![
            "server".to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--workers".into(),
            "1".into(),
            "--backend-store-uri".into(),
            format!("sqlite:///{}", d.join("mlflow.db").display()),
            "--serve-artifacts".into(),
            "--artifacts-destination".into(),
            d.join("artifacts").display().to_string(),
        ];
        let mut env = vec![("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false".to_string())];
        if let Some(password) = admin_password {
            let ini = d.join("basic_auth.ini");
            std::fs::write(
                &ini,
                format!(
                    "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\n\
                     admin_username = admin\n\
                     authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
                    d.join("basic_auth.db").display()
                ),
            )
            .expect("write the auth config");
            args.extend(["--app-name".into(), "basic-auth".into()]);
            env.push(("MLFLOW_AUTH_CONFIG_PATH", ini.display().to_string()));
            env.push(("MLFLOW_AUTH_ADMIN_PASSWORD", password.to_string()));
            env.push(("MLFLOW_FLASK_SERVER_SECRET_KEY", "isolake-tests".into()));
        }
        let log = std::fs::File::create(d.join("server.log")).expect("create the server log");
        let mut cmd = Command::new(&mlflow);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            // Its own process group: the server and its uvicorn worker are stopped together.
            .process_group(0);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let server = ChildGuard::spawn(&mut cmd);
        // Stops the group once the test process or the server is gone (a `static` server is
        // never dropped).
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(
                "while kill -0 \"$0\" 2>/dev/null && kill -0 \"$1\" 2>/dev/null; do sleep 0.5; \
                 done; kill -TERM \"-$1\" 2>/dev/null",
            )
            .arg(std::process::id().to_string())
            .arg(server.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server's watchdog");
        let url = format!("http://127.0.0.1:{port}");
        let server = MlflowServer {
            url,
            dir,
            server,
            watchdog,
        };
        server.wait_until_up(Duration::from_secs(120));
        server
    }

    /// Polls `/health` until the server answers; panics with its log after `limit`.
    fn wait_until_up(&self, limit: Duration) {
        let health = format!("{}/health", self.url);
        let what = format!("the mlflow server to answer {health}");
        eventually_with(limit, &what, || {
            if let Ok(r) = reqwest::blocking::get(&health)
                && r.status().is_success()
            {
                return Ok(());
            }
            // Small (start-up lines), and on a timeout what says why.
            let log = std::fs::read_to_string(self.dir.path().join("server.log"));
            Err(format!("its log:\n{}", log.unwrap_or_default()))
        });
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The server's own process group (its pid): the server and its uvicorn worker.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.server.id())])
            .status();
        let _ = self.server.wait();
        let _ = self.watchdog.wait();
    }
}

/// The Python of MLflow's venv (mlflow, pandas, numpy, pyarrow), for loading isolake models
/// with `mlflow.pyfunc`.
pub fn mlflow_python() -> PathBuf {
    crate::installed_tool(
        "ISOLAKE_MLFLOW_PYTHON",
        "venv-mlflow/bin/python",
        "the MLflow model tests load isolake versions with mlflow.pyfunc",
    )
}

/// Runs a Python snippet with [`mlflow_python`] and `args`; returns the last line it printed,
/// as JSON (see [`crate::run_python_at`]).
pub fn python_json<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> serde_json::Value {
    crate::run_python_at(&mlflow_python(), script, args)
}
