//! A bench's files judged: the bench id, the queue Redis, the sites served and the sites left
//! out (with why), and how that fills in a [`Config`] where the file is silent.

use std::path::PathBuf;

use super::frappe_conf::{self, Env, QueueRedis};
use super::walk::BenchFiles;
use crate::config::{Config, DbConfig, SiteConfig};

/// The Frappe app a site must have installed to be served.
pub const BTU_APP: &str = "btu";

#[derive(Debug, Clone)]
pub struct Discovery {
    /// The bench's real path.
    pub bench_path: PathBuf,
    pub bench_id: String,
    pub queue_redis: QueueRedis,
    /// Sites with a usable MariaDB configuration, in name order. Whether BTU is installed on
    /// them is learnt when they are read (it needs the database).
    pub sites: Vec<SiteConfig>,
    pub excluded: Vec<Excluded>,
}

/// A site folder that is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    pub site: String,
    pub reason: String,
}

impl Discovery {
    pub fn from_files(files: BenchFiles, env: Env<'_>) -> Discovery {
        let path_text = files.path.to_string_lossy().into_owned();
        let bench_id = frappe_conf::bench_id(&files.common, &path_text);
        let queue_redis = frappe_conf::queue_redis(&files.common, &bench_id, env);
        let mut sites = Vec::new();
        let mut excluded = Vec::new();
        for (name, conf) in files.sites {
            let judged = conf.and_then(|conf| {
                if name.is_empty() || name.contains(char::is_whitespace) || name.contains(':') {
                    return Err("the site name has a space or ':' in it".to_string());
                }
                frappe_conf::site_db(&name, &conf, &files.common, env)
            });
            match judged {
                Ok(site) => sites.push(site),
                Err(reason) => excluded.push(Excluded { site: name, reason }),
            }
        }
        Discovery { bench_path: files.path, bench_id, queue_redis, sites, excluded }
    }

    /// The queue prefix Frappe v15 uses: `<bench_id>:`.
    pub fn queue_prefix(&self) -> String {
        format!("{}:", self.bench_id)
    }

    /// `config` with what the file left unsaid taken from the bench: the Redis URL (unless
    /// `[redis] url`/`rq_host`/`rq_port` is set), the queue prefix (unless
    /// `[frappe] queue_prefix` is set) and the discovered sites after the file's own
    /// (a `[[sites]]` entry of the same name wins).
    pub fn apply(&self, config: &Config) -> Config {
        let mut out = config.clone();
        if !config.redis.url_explicit {
            out.redis.url = self.queue_redis.url.clone();
        }
        if !config.frappe.queue_prefix_explicit {
            out.frappe.queue_prefix = self.queue_prefix();
        }
        let file_site = config.file.as_ref().map(|f| f.site.as_str());
        for site in &self.sites {
            if !config.sites.iter().any(|s| s.name == site.name) && file_site != Some(site.name.as_str()) {
                out.sites.push(site.clone());
            }
        }
        out
    }

    /// Whether `site` came from the bench (not from the file's `[[sites]]`).
    pub fn discovered(&self, config: &Config, site: &str) -> bool {
        !config.sites.iter().any(|s| s.name == site) && self.sites.iter().any(|s| s.name == site)
    }
}

/// Whether two site configurations reach the same database the same way.
pub fn same_db(a: &DbConfig, b: &DbConfig) -> bool {
    match (a, b) {
        (
            DbConfig::Params { host, port, user, password, database, socket },
            DbConfig::Params { host: h2, port: p2, user: u2, password: pw2, database: d2, socket: s2 },
        ) => host == h2 && port == p2 && user == u2 && password == pw2 && database == d2 && socket == s2,
        (DbConfig::Url(_), DbConfig::Url(_)) => a.describe() == b.describe(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bench::discover_with;

    /// A bench folder of its own: common config, three sites (one on postgres, one broken),
    /// `assets` and `apps.txt` that are not sites.
    fn bench(dir: &Path, common: &str) {
        let sites = dir.join("sites");
        for (site, conf) in [
            ("a.local", r#"{"db_name": "_a", "db_password": "pa"}"#),
            ("b.local", r#"{"db_name": "_b", "db_password": "pb", "db_host": "10.0.0.9"}"#),
            ("pg.local", r#"{"db_name": "_p", "db_password": "pp", "db_type": "postgres"}"#),
            ("broken.local", "{"),
        ] {
            std::fs::create_dir_all(sites.join(site)).unwrap();
            std::fs::write(sites.join(site).join("site_config.json"), conf).unwrap();
        }
        std::fs::create_dir_all(sites.join("assets")).unwrap();
        std::fs::write(sites.join("apps.txt"), "frappe\nbtu\n").unwrap();
        std::fs::write(sites.join("common_site_config.json"), common).unwrap();
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("btu-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn discovers_sites_queue_and_reasons() {
        let dir = tempdir("disc");
        bench(&dir, r#"{"redis_queue": "redis://127.0.0.1:11000", "db_host": "db.local"}"#);
        let d = discover_with(&dir, &|_| None).unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(d.bench_id, real.to_string_lossy().trim_matches('/').replace('/', "-"));
        assert_eq!(d.queue_redis.url.expose(), "redis://127.0.0.1:11000");
        let names: Vec<_> = d.sites.iter().map(|s| (s.name.as_str(), s.db.describe())).collect();
        assert_eq!(
            names,
            vec![
                ("a.local", "mysql://_a@db.local:3306/_a".to_string()),
                ("b.local", "mysql://_b@10.0.0.9:3306/_b".into())
            ]
        );
        assert!(d.sites.iter().all(|s| s.discovered));
        let out: Vec<_> = d.excluded.iter().map(|x| x.site.as_str()).collect();
        assert_eq!(out, vec!["broken.local", "pg.local"]);
        assert!(d.excluded[0].reason.contains("invalid JSON"), "{:?}", d.excluded);
        assert!(d.excluded[1].reason.contains("postgres"), "{:?}", d.excluded);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn explicit_keys_win() {
        let dir = tempdir("apply");
        bench(&dir, r#"{"bench_id": "prod", "redis_queue": "redis://127.0.0.1:11000"}"#);
        let d = discover_with(&dir, &|_| None).unwrap();
        let text = format!("[frappe]\nbench_path = \"{}\"\n", dir.display());
        let cfg = Config::parse(&text, Path::new("/tmp/x.toml")).unwrap();
        let applied = d.apply(&cfg);
        assert_eq!(applied.frappe.queue_prefix, "prod:");
        assert_eq!(applied.redis.url.expose(), "redis://127.0.0.1:11000");
        assert_eq!(applied.sites.len(), 2);
        let text = format!(
            "[frappe]\nbench_path = \"{}\"\nqueue_prefix = \"x:\"\n[redis]\nurl = \"redis://r:1\"\n\
             [[sites]]\nname = \"a.local\"\ndatabase = \"_mine\"\n",
            dir.display()
        );
        let cfg = Config::parse(&text, Path::new("/tmp/x.toml")).unwrap();
        let applied = d.apply(&cfg);
        assert_eq!(applied.frappe.queue_prefix, "x:");
        assert_eq!(applied.redis.url.expose(), "redis://r:1");
        let a = applied.sites.iter().find(|s| s.name == "a.local").unwrap();
        assert!(!a.discovered && a.db.describe().ends_with("/_mine"));
        assert_eq!(applied.sites.len(), 2);
        assert!(!d.discovered(&cfg, "a.local") && d.discovered(&cfg, "b.local"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flat_key_and_missing_bench() {
        let cfg = Config::parse("frappe_bench_path = \"/no/such/bench\"", Path::new("/tmp/x.toml")).unwrap();
        let bench = cfg.frappe.bench_path.clone().unwrap();
        assert_eq!(bench, PathBuf::from("/no/such/bench"));
        let e = discover_with(&bench, &|_| None).unwrap_err().to_string();
        assert!(e.contains("/no/such/bench"), "{e}");
    }
}
