//! `btu`: command line tool for BTU schedules (`btu next`, `btu explain`, ...).

use btu::cli::Cli;
use chrono::Utc;
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run(Utc::now()) {
        Ok(text) => {
            // A closed pipe (`btu next ... | head`) is not worth a panic or an error message.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("btu: {err}");
            ExitCode::FAILURE
        }
    }
}
