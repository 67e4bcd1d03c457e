//! Subcommands of the `btu` command line tool.
