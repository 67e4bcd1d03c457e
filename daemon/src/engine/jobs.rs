//! The RQ job for one run of a schedule, in frappe or plain mode, and the run ready for the
//! writer. Pure.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::{Config, Mode};
use crate::policy::Overlap;
use crate::pyvalue::{Kwargs, PyValue};
use crate::rq::{Claim, Gates, IdForm, OverlapGate, PreparedRun, RqError, RqJob};
use crate::source::ScheduleSpec;

/// Frappe's `execute_job`, which every Frappe worker can import.
pub const FRAPPE_EXECUTE_JOB: &str = "frappe.utils.background_jobs.execute_job";

/// What job building needs from the configuration.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub runner: String,
    pub user: String,
    pub result_ttl_secs: i64,
    pub failure_ttl_secs: i64,
    /// The id form of Frappe-mode runs, decided from the registered workers at each rebuild
    /// (plain-mode runs always get the portable form).
    pub id_form: IdForm,
}

impl JobSettings {
    pub fn from_config(config: &Config) -> Self {
        JobSettings {
            runner: config.frappe.runner.clone(),
            user: config.frappe.user.clone(),
            result_ttl_secs: crate::rq::DEFAULT_RESULT_TTL_SECS,
            failure_ttl_secs: crate::rq::DEFAULT_FAILURE_TTL_SECS,
            id_form: IdForm::Portable,
        }
    }
}

/// The job of the run of `spec` due at `due`, with id `job_id`.
///
/// Frappe mode calls `execute_job(site=, user=, method=<runner>, event=None,
/// job_name=<runner>, is_async=True, kwargs={task, schedule, arguments, due, job_id})`, exactly
/// the keyword arguments Frappe's own `enqueue` passes; the runner then loads the BTU Task
/// and calls its function with `arguments`. Plain mode calls the schedule's function with its
/// kwargs.
pub fn build_job(spec: &ScheduleSpec, due: DateTime<Utc>, job_id: String, settings: &JobSettings) -> RqJob {
    let (func, kwargs): (String, Kwargs) = match spec.mode {
        Mode::Plain => (spec.function.clone(), spec.kwargs.clone()),
        Mode::Frappe => {
            let str_ = |s: &str| PyValue::Str(s.to_string());
            let inner = vec![
                (str_("task"), spec.task.as_deref().map_or(PyValue::None, str_)),
                (str_("schedule"), str_(&spec.id)),
                (str_("arguments"), PyValue::Dict(spec.kwargs.iter().map(|(k, v)| (str_(k), v.clone())).collect())),
                (str_("due"), str_(&due.to_rfc3339_opts(SecondsFormat::Secs, true))),
                (str_("job_id"), str_(&job_id)),
            ];
            (
                FRAPPE_EXECUTE_JOB.to_string(),
                vec![
                    ("site".into(), str_(&spec.site)),
                    ("user".into(), str_(&settings.user)),
                    ("method".into(), str_(&settings.runner)),
                    ("event".into(), PyValue::None),
                    ("job_name".into(), str_(&settings.runner)),
                    ("is_async".into(), PyValue::Bool(true)),
                    ("kwargs".into(), PyValue::Dict(inner)),
                ],
            )
        }
    };
    let description = match (&spec.task, &spec.task_description) {
        (Some(task), Some(d)) => format!(
            "btu {} {} ({task}: {d}) due {}",
            spec.site,
            spec.id,
            due.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        _ => format!(
            "btu {} {} {} due {}",
            spec.site,
            spec.id,
            spec.function,
            due.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    };
    RqJob {
        id: job_id,
        queue: spec.queue.clone(),
        func,
        args: Vec::new(),
        kwargs,
        timeout_secs: spec.timeout_secs,
        result_ttl_secs: settings.result_ttl_secs,
        failure_ttl_secs: settings.failure_ttl_secs,
        description,
    }
}

/// The job id of the run of `spec` on `site` due at `due`: in [`JobSettings::id_form`] for
/// Frappe mode, portable for plain mode.
pub fn run_job_id(site: &str, spec: &ScheduleSpec, due: DateTime<Utc>, settings: &JobSettings) -> String {
    let form = if spec.mode == Mode::Frappe { settings.id_form } else { IdForm::Portable };
    crate::rq::job_id_in(form, site, &spec.id, due)
}

/// The gates the run of `spec` on `site` due at `due` passes at its instant: the schedule's
/// pause key, its skip set (member: the due instant in unix seconds), its last job and its
/// overlap policy, and the site's gate indexes.
pub fn run_gates(site: &str, spec: &ScheduleSpec, due: DateTime<Utc>) -> Gates {
    use super::store::{gate_index, lastjob_key, pause_key, skip_key};
    Gates {
        pause_key: Some(pause_key(site, &spec.id)),
        skip: Some((skip_key(site, &spec.id), due.timestamp())),
        lastjob_key: Some(lastjob_key(site, &spec.id)),
        overlap: overlap_gate(spec),
        index: Some(std::sync::Arc::new(gate_index(site))),
    }
}

/// The schedule's overlap policy (`spec.policies.overlap`) as the script applies it.
fn overlap_gate(spec: &ScheduleSpec) -> OverlapGate {
    match spec.policies.overlap {
        Overlap::Allow => OverlapGate::Allow,
        Overlap::Skip => OverlapGate::Skip,
        Overlap::Replace => OverlapGate::Replace,
    }
}

/// The run of `spec` on `site` due at `due`, ready for [`crate::rq::RqWriter::enqueue_many`]:
/// job id derived, job built, every field validated, payload pickled and compressed, claim
/// named, gates set ([`run_gates`]). This is the costly part of an enqueue, which is why the engine does it before the
/// due instant when it can. `created_at` becomes the job's `created_at`.
pub fn prepare_run(
    site: &str,
    spec: &ScheduleSpec,
    due: DateTime<Utc>,
    settings: &JobSettings,
    claim_ttl_secs: u64,
    created_at: DateTime<Utc>,
) -> Result<PreparedRun, RqError> {
    let job_id = run_job_id(site, spec, due, settings);
    let claim = Claim { key: super::store::claim_key(site, &spec.id, due), ttl_secs: claim_ttl_secs };
    let job = build_job(spec, due, job_id, settings);
    Ok(PreparedRun::new(&job, claim, created_at)?.with_gates(run_gates(site, spec, due)))
}
