//! Daemon configuration.
