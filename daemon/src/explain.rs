//! `explain`: a local schedule as UTC cron expressions, window by window between DST transitions.
