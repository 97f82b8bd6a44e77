//! `isolake-train`: not implemented yet. It refuses to pretend: any invocation exits non-zero.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("isolake-train: not implemented yet (tracked in the project's issues)");
    ExitCode::FAILURE
}
