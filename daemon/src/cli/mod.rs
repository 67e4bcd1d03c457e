//! Subcommands of the `btu` command line tool.
pub mod check_config;
