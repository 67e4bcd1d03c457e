//! Sources of schedules.
