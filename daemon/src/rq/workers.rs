//! The rq workers registered in Redis (`<prefix>:workers`, each `<prefix>:worker:<name>` hash's
//! `version` and `queues`, `docs/rq.md` W6), and the job id form they allow (W9).

use redis::aio::ConnectionManager;

use super::id::IdForm;

/// A registered worker as its hash describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The worker's hash key, `rq:worker:<name>`.
    pub key: String,
    /// Its rq release (`version` field), when written.
    pub version: Option<String>,
    /// The queue names it listens on (`queues` field, comma-separated).
    pub queues: Vec<String>,
}

/// Reads every registered worker: `SMEMBERS <prefix>:workers`, then one pipelined `HMGET
/// version queues` per member. Members whose hash is gone (a worker that died without
/// unregistering, its hash expired) are left out, as rq's own `Worker.all` does.
pub async fn read_workers(conn: &mut ConnectionManager, key_prefix: &str) -> redis::RedisResult<Vec<WorkerInfo>> {
    let keys: Vec<String> = redis::cmd("SMEMBERS").arg(format!("{key_prefix}:workers")).query_async(conn).await?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("HMGET").arg(k).arg("version").arg("queues").arg("birth");
    }
    let replies: Vec<(Option<String>, Option<String>, Option<String>)> = pipe.query_async(conn).await?;
    let mut out: Vec<WorkerInfo> = keys
        .into_iter()
        .zip(replies)
        .filter(|(_, (v, q, b))| v.is_some() || q.is_some() || b.is_some())
        .map(|(key, (version, queues, _))| WorkerInfo {
            key,
            version,
            queues: queues
                .map(|q| q.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// `(major, minor)` of an rq release string (`1.15.1`, `2.8.0rc1`, `3.0.0`); None when it does
/// not start with two numbers.
pub fn release(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor_text: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor_text.parse().ok()?))
}

/// The first rq release that refuses ids outside `[A-Za-z0-9_-]` (`docs/rq.md` W9).
pub const STRICT_IDS_FROM: (u32, u32) = (2, 8);

/// The id form the registered workers allow, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormChoice {
    pub form: IdForm,
    pub reason: String,
}

/// [`IdForm::SitePrefixed`] only when at least one worker is registered and every one runs a
/// release before 2.8; any newer, unreadable or missing version keeps the portable form.
pub fn choose_form(workers: &[WorkerInfo]) -> FormChoice {
    if workers.is_empty() {
        return FormChoice { form: IdForm::Portable, reason: "no rq worker is registered".into() };
    }
    for w in workers {
        let name = w.key.rsplit_once(":worker:").map_or(w.key.as_str(), |(_, n)| n);
        match w.version.as_deref().map(|v| (v, release(v))) {
            None => {
                return FormChoice { form: IdForm::Portable, reason: format!("worker {name} has no version") };
            }
            Some((v, None)) => {
                return FormChoice {
                    form: IdForm::Portable,
                    reason: format!("worker {name} runs rq {v:?} (unreadable)"),
                };
            }
            Some((v, Some(r))) if r >= STRICT_IDS_FROM => {
                return FormChoice {
                    form: IdForm::Portable,
                    reason: format!("worker {name} runs rq {v} (>= 2.8 accepts only [A-Za-z0-9_-] in ids)"),
                };
            }
            Some(_) => {}
        }
    }
    let mut versions: Vec<&str> = workers.iter().filter_map(|w| w.version.as_deref()).collect();
    versions.sort_unstable();
    versions.dedup();
    FormChoice {
        form: IdForm::SitePrefixed,
        reason: format!("all {} registered rq workers run rq < 2.8 ({})", workers.len(), versions.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, version: Option<&str>) -> WorkerInfo {
        WorkerInfo { key: format!("rq:worker:{name}"), version: version.map(str::to_string), queues: vec![] }
    }

    #[test]
    fn releases_parse() {
        assert_eq!(release("1.15.1"), Some((1, 15)));
        assert_eq!(release("2.8.0rc1"), Some((2, 8)));
        assert_eq!(release("2.10"), Some((2, 10)));
        assert_eq!(release("3.0.0"), Some((3, 0)));
        assert_eq!(release("x"), None);
        assert_eq!(release("2"), None);
    }

    #[test]
    fn site_prefixed_only_when_every_worker_is_older_than_2_8() {
        assert_eq!(choose_form(&[]).form, IdForm::Portable);
        let old = [w("a", Some("1.15.1")), w("b", Some("2.7.0")), w("c", Some("1.15.1"))];
        let c = choose_form(&old);
        assert_eq!(c.form, IdForm::SitePrefixed);
        assert_eq!(c.reason, "all 3 registered rq workers run rq < 2.8 (1.15.1, 2.7.0)");
        for newer in [Some("2.8.0"), Some("3.0.0"), Some("2.10.1"), Some("dev"), None] {
            let mut ws = old.to_vec();
            ws.push(w("new", newer));
            let c = choose_form(&ws);
            assert_eq!(c.form, IdForm::Portable, "{newer:?}");
            assert!(c.reason.contains("worker new"), "{}", c.reason);
        }
    }
}
