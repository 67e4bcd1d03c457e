//! The cron engine: local-time cron expressions to UTC run instants.
