//! The shipped example configurations parse, and the demo schedules file loads cleanly.

use std::path::Path;

use btu::config::Config;
use btu::source::{RowOutcome, Source};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

#[test]
fn example_configs_parse() {
    let frappe = Config::load(&example("btu_scheduler.toml")).expect("btu_scheduler.toml");
    assert_eq!(frappe.sites.len(), 1);
    assert!(frappe.unused_keys.is_empty(), "{:?}", frappe.unused_keys);
    let original = Config::load(&example("btu_scheduler_original.toml")).expect("original flat file");
    assert_eq!(original.sites[0].name, "site1.local");
    assert!(!original.unused_keys.is_empty());
}

#[tokio::test]
async fn demo_schedules_load() {
    let demo = Config::load(&example("demo.toml")).expect("demo.toml");
    let source = Source::all_from_config(&demo).remove(0);
    let rows = source.load_all().await.expect("demo schedules");
    let loaded = rows.iter().filter(|r| matches!(r, RowOutcome::Loaded(_))).count();
    assert_eq!((rows.len(), loaded), (4, 3), "{rows:?}");
}
