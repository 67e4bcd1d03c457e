//! The `btu check-config` lines about rq workers and the runner's app: which workers are
//! registered, the job id form they allow in Frappe mode, queues no worker listens on, and a
//! site that does not have the runner's app installed. Pure: the caller reads Redis and MariaDB.

use std::collections::BTreeMap;

use super::check_line::{CheckLine, CheckStatus, line};
use crate::rq::{IdForm, WorkerInfo, choose_form};

/// The registered workers, and (when some source is in Frappe mode) the job id form.
pub fn worker_lines(workers: &[WorkerInfo], frappe: bool) -> Vec<CheckLine> {
    let mut out = Vec::new();
    if workers.is_empty() {
        out.push(line(
            CheckStatus::Warn,
            "rq workers",
            "none registered in this Redis (no job will run until one starts)",
        ));
    } else {
        let mut versions: Vec<&str> = workers.iter().map(|w| w.version.as_deref().unwrap_or("unknown")).collect();
        versions.sort_unstable();
        versions.dedup();
        out.push(line(
            CheckStatus::Ok,
            "rq workers",
            format!("{} registered (rq {})", workers.len(), versions.join(", ")),
        ));
    }
    if frappe {
        let choice = choose_form(workers);
        out.push(match choice.form {
            IdForm::SitePrefixed => line(
                CheckStatus::Ok,
                "job ids (frappe mode)",
                format!("{}: {}; Desk -> RQ Job lists them", choice.form.label(), choice.reason),
            ),
            IdForm::Portable => line(
                CheckStatus::Warn,
                "job ids (frappe mode)",
                format!(
                    "{}: {}; Desk -> RQ Job will not list these jobs (it lists ids starting with the site name)",
                    choice.form.label(),
                    choice.reason
                ),
            ),
        });
    }
    out
}

/// One warning per queue some runnable schedule uses that no registered worker listens on.
/// `used` maps each queue to the sites whose schedules use it (with a count). Nothing is said
/// when no worker is registered at all ([`worker_lines`] already warns).
pub fn queue_lines(workers: &[WorkerInfo], used: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<CheckLine> {
    if workers.is_empty() {
        return Vec::new();
    }
    let mut listened: Vec<&str> = workers.iter().flat_map(|w| w.queues.iter().map(String::as_str)).collect();
    listened.sort_unstable();
    listened.dedup();
    let mut out = Vec::new();
    for (queue, sites) in used {
        if listened.contains(&queue.as_str()) {
            continue;
        }
        let users: Vec<String> = sites.iter().map(|(site, n)| format!("{n} schedule(s) of site {site}")).collect();
        let hint =
            match listened.iter().find(|l| l.ends_with(&format!(":{queue}")) || queue.ends_with(&format!(":{l}"))) {
                Some(near) => format!(
                    "; workers listen on {near:?}: a missing or different bench-id prefix? (frappe.queue_prefix)"
                ),
                None => String::new(),
            };
        out.push(line(
            CheckStatus::Warn,
            format!("queue {queue}"),
            format!(
                "no registered rq worker listens on it (used by {}); workers listen on: {}{hint}",
                users.join(", "),
                listened.join(", ")
            ),
        ));
    }
    out
}

/// The runner's app (the top-level package of the runner's dotted path) installed on a
/// Frappe-mode site, or a failure: every run of that site would fail in `frappe.get_attr`.
pub fn runner_app_line(site: &str, runner: &str, installed: &[String]) -> CheckLine {
    let app = runner.split('.').next().unwrap_or(runner);
    let what = format!("site {site} runner app");
    if installed.iter().any(|a| a == app) {
        line(CheckStatus::Ok, what, format!("{app} is installed (runner {runner})"))
    } else {
        line(
            CheckStatus::Fail,
            what,
            format!(
                "{app} is not installed on the site (installed: {}); every run would fail with AppNotInstalledError: \
                 bench --site {site} install-app {app}",
                if installed.is_empty() { "none".to_string() } else { installed.join(", ") }
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(version: &str, queues: &[&str]) -> WorkerInfo {
        WorkerInfo {
            key: format!("rq:worker:w{version}"),
            version: Some(version.into()),
            queues: queues.iter().map(|q| q.to_string()).collect(),
        }
    }

    fn text(lines: &[CheckLine]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn workers_and_id_form() {
        assert_eq!(
            text(&worker_lines(&[], true)),
            "warn  rq workers: none registered in this Redis (no job will run until one starts)\n\
             warn  job ids (frappe mode): portable btu-<site>-<schedule>-<due>: no rq worker is registered; \
             Desk -> RQ Job will not list these jobs (it lists ids starting with the site name)\n"
        );
        assert_eq!(
            text(&worker_lines(&[w("1.15.1", &["b:default"])], true)),
            "ok    rq workers: 1 registered (rq 1.15.1)\n\
             ok    job ids (frappe mode): <site>||btu-<schedule>-<due>: all 1 registered rq workers run rq < 2.8 \
             (1.15.1); Desk -> RQ Job lists them\n"
        );
        let two = [w("1.15.1", &[]), w("3.0.0", &[])];
        let t = text(&worker_lines(&two, true));
        assert!(t.contains("warn  job ids (frappe mode): portable") && t.contains("runs rq 3.0.0 (>= 2.8"), "{t}");
        assert_eq!(worker_lines(&two, false).len(), 1, "plain mode says nothing about the id form");
    }

    #[test]
    fn unheard_queues_are_named_with_a_hint() {
        let workers = [w("1.15.1", &["bench-x:default", "bench-x:long"])];
        let mut used: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        used.entry("bench-x:default".into()).or_default().insert("a.local".into(), 3);
        used.entry("default".into()).or_default().insert("a.local".into(), 2);
        assert_eq!(
            text(&queue_lines(&workers, &used)),
            "warn  queue default: no registered rq worker listens on it (used by 2 schedule(s) of site a.local); \
             workers listen on: bench-x:default, bench-x:long; workers listen on \"bench-x:default\": a missing or \
             different bench-id prefix? (frappe.queue_prefix)\n"
        );
        assert!(queue_lines(&[], &used).is_empty());
    }

    #[test]
    fn runner_app() {
        let apps = vec!["btu".to_string(), "frappe".to_string()];
        let l = runner_app_line("a.local", "btu_hooks.runner.run_task", &apps);
        assert_eq!(l.status, CheckStatus::Fail);
        assert!(l.detail.starts_with("btu_hooks is not installed on the site (installed: btu, frappe)"), "{l}");
        let l = runner_app_line("a.local", "btu.x.run", &apps);
        assert_eq!(l.to_string(), "ok    site a.local runner app: btu is installed (runner btu.x.run)");
    }
}
