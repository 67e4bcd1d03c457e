//! The btu wire protocol (filled by the live-changes work).
