//! Property tests: every message type survives encode → frame → decode unchanged, for arbitrary
//! strings (unicode included), counts and ids; and arbitrary bytes never make a decoder panic.

use btu_protocol::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Mostly short printable text with unicode, sometimes anything `String` can hold.
    prop_oneof![4 => "\\PC{0,24}", 1 => any::<String>()]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        (vec(text(), 0..8), option::of(text())).prop_map(|(schedules, site)| Request::Notify { schedules, site }),
        (text(), option::of(text())).prop_map(|(schedule, site)| Request::Cancel { schedule, site }),
        option::of(text()).prop_map(|site| Request::Rebuild { site }),
        Just(Request::Status),
        (option::of(text()), option::of(text()), any::<u32>()).prop_map(|(schedule, site, count)| Request::Upcoming {
            schedule,
            site,
            count
        }),
        (text(), option::of(text()), any::<u32>()).prop_map(|(schedule, site, count)| Request::History {
            schedule,
            site,
            count
        }),
        (text(), option::of(text())).prop_map(|(schedule, site)| Request::RunNow { schedule, site }),
        (text(), option::of(text()), option::of(text()), option::of(text()))
            .prop_map(|(schedule, site, until, note)| Request::Pause { schedule, site, until, note }),
        (text(), option::of(text())).prop_map(|(schedule, site)| Request::Resume { schedule, site }),
        (text(), option::of(text()), any::<u32>()).prop_map(|(schedule, site, count)| Request::SkipNext {
            schedule,
            site,
            count
        }),
        (text(), option::of(text()), text(), text(), any::<u32>(), any::<bool>()).prop_map(
            |(schedule, site, start, end, max, dry_run)| Request::Backfill { schedule, site, start, end, max, dry_run }
        ),
        (option::of(text()), option::of(text()), any::<u32>()).prop_map(|(schedule, site, count)| Request::Audit {
            schedule,
            site,
            count
        }),
    ]
}

fn pause_info() -> impl Strategy<Value = PauseInfo> {
    (option::of(text()), option::of(text()), text(), option::of(any::<u32>()), option::of(any::<i32>()))
        .prop_map(|(until, note, at, uid, pid)| PauseInfo { until, note, at, uid, pid })
}

fn backfill_status() -> impl Strategy<Value = BackfillStatus> {
    prop_oneof![Just(BackfillStatus::Enqueued), Just(BackfillStatus::Exists), Just(BackfillStatus::WouldEnqueue)]
}

/// The responses to the operator actions (protocol version 2).
fn action_response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (text(), text(), pause_info()).prop_map(|(site, schedule, pause)| Response::Paused(Paused {
            site,
            schedule,
            pause
        })),
        (text(), text(), any::<bool>()).prop_map(|(site, schedule, was_paused)| Response::Resumed(Resumed {
            site,
            schedule,
            was_paused
        })),
        (text(), text(), vec(next_run(), 0..4), vec(next_run(), 0..4)).prop_map(|(site, schedule, added, pending)| {
            Response::Skipped(Skipped { site, schedule, added, pending })
        }),
        (text(), text(), any::<bool>(), vec((text(), text(), text(), backfill_status()), 0..4)).prop_map(
            |(site, schedule, dry_run, runs)| Response::Backfilled(Backfilled {
                site,
                schedule,
                dry_run,
                runs: runs
                    .into_iter()
                    .map(|(due, local, job_id, status)| BackfillRun { due, local, job_id, status })
                    .collect(),
            })
        ),
        (
            text(),
            vec(
                (
                    text(),
                    text(),
                    text(),
                    option::of(text()),
                    text(),
                    option::of(text()),
                    option::of(any::<u32>()),
                    option::of(any::<i32>())
                ),
                0..3
            )
        )
            .prop_map(|(site, entries)| Response::Audited(Audited {
                site,
                entries: entries
                    .into_iter()
                    .map(|(id, time, action, schedule, args, note, uid, pid)| AuditEntry {
                        id,
                        time,
                        action,
                        schedule,
                        args,
                        note,
                        uid,
                        pid
                    })
                    .collect(),
            })),
    ]
}

fn next_run() -> impl Strategy<Value = NextRun> {
    (text(), text()).prop_map(|(utc, local)| NextRun { utc, local })
}

fn settings() -> impl Strategy<Value = Settings> {
    (text(), text(), any::<u32>(), text(), text()).prop_map(|(overlap, catchup, jitter_secs, dst_gap, dst_overlap)| {
        Settings { overlap, catchup, jitter_secs, dst_gap, dst_overlap }
    })
}

fn schedule_state() -> impl Strategy<Value = ScheduleState> {
    (
        text(),
        text(),
        any::<bool>(),
        option::of(text()),
        option::of(text()),
        vec(next_run(), 0..4),
        option::of(settings()),
    )
        .prop_map(|(site, schedule, runs, reason, time_zone, next_runs, settings)| ScheduleState {
            site,
            schedule,
            runs,
            reason,
            time_zone,
            next_runs,
            settings,
        })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::UnknownSchedule),
        Just(ErrorCode::InvalidSchedule),
        Just(ErrorCode::UnsupportedVersion),
        Just(ErrorCode::FrameTooLarge),
        Just(ErrorCode::Malformed),
        Just(ErrorCode::Internal),
        Just(ErrorCode::InvalidArgument),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (text(), any::<u32>())
            .prop_map(|(daemon_version, protocol_version)| Response::Pong(Pong { daemon_version, protocol_version })),
        vec(schedule_state(), 0..4).prop_map(|results| Response::Notified(Notified { results })),
        (text(), text(), any::<bool>()).prop_map(|(site, schedule, removed)| Response::Cancelled(Cancelled {
            site,
            schedule,
            removed
        })),
        (vec(text(), 0..4), any::<u32>(), any::<u32>(), any::<u64>()).prop_map(
            |(sites, schedules, skipped, duration_ms)| Response::Rebuilt(Rebuilt {
                sites,
                schedules,
                skipped,
                duration_ms
            })
        ),
        (
            text(),
            any::<u32>(),
            text(),
            any::<u64>(),
            text(),
            vec(
                (
                    text(),
                    any::<u32>(),
                    any::<bool>(),
                    any::<bool>(),
                    option::of(text()),
                    vec((text(), pause_info()), 0..2),
                    vec((text(), text()), 0..2)
                ),
                0..3
            )
        )
            .prop_map(|(daemon_version, protocol_version, started_at, uptime_secs, source, sites)| {
                Response::Status(Status {
                    daemon_version,
                    protocol_version,
                    started_at,
                    uptime_secs,
                    source,
                    sites: sites
                        .into_iter()
                        .map(|(site, schedules, redis_ok, source_ok, last_rebuild, paused, skipped)| SiteStatus {
                            site,
                            schedules,
                            redis_ok,
                            source_ok,
                            last_rebuild,
                            paused: paused
                                .into_iter()
                                .map(|(schedule, pause)| PausedSchedule { schedule, pause })
                                .collect(),
                            skipped: skipped.into_iter().map(|(schedule, utc)| SkippedRun { schedule, utc }).collect(),
                        })
                        .collect(),
                    defaults: None,
                })
            }),
        vec((text(), text(), option::of(text()), text(), text(), any::<bool>(), any::<bool>()), 0..4).prop_map(
            |runs| Response::Upcoming(Upcoming {
                runs: runs
                    .into_iter()
                    .map(|(site, schedule, task, utc, local, paused, skipped)| UpcomingRun {
                        site,
                        schedule,
                        task,
                        utc,
                        local,
                        paused,
                        skipped,
                        settings: None,
                    })
                    .collect()
            })
        ),
        (text(), text(), vec((text(), text(), option::of(text()), text(), option::of(any::<i64>())), 0..4)).prop_map(
            |(site, schedule, runs)| Response::History(History {
                site,
                schedule,
                runs: runs
                    .into_iter()
                    .map(|(job_id, due, enqueued_at, outcome, lateness_ms)| HistoryRun {
                        job_id,
                        due,
                        enqueued_at,
                        outcome,
                        lateness_ms
                    })
                    .collect()
            })
        ),
        (text(), text(), text(), text()).prop_map(|(site, schedule, job_id, queue)| Response::RanNow(RanNow {
            site,
            schedule,
            job_id,
            queue
        })),
        (error_code(), text(), option::of(text())).prop_map(|(code, message, schedule)| Response::Error(ErrorReply {
            code,
            message,
            schedule
        })),
        action_response(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_request_round_trips(id in any::<u64>(), request in request()) {
        let envelope = RequestEnvelope::new(id, request);
        let framed = encode_request(&envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let body = read_frame(&mut framed.as_slice(), MAX_FRAME_LEN).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_request(&body).ok(), Some(envelope));
        prop_assert_eq!(peek_request_id(&body), Some(id));
    }

    #[test]
    fn every_response_round_trips(id in any::<u64>(), response in response()) {
        let envelope = ResponseEnvelope::new(id, response);
        let framed = encode_response(&envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reader = FrameReader::new(MAX_FRAME_LEN);
        reader.push(&framed);
        let body = reader.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(body.and_then(|b| decode_response(&b).ok()), Some(envelope));
    }

    #[test]
    fn any_other_version_is_refused_by_both_sides(v in any::<u32>().prop_filter("other version", |v| *v != PROTOCOL_VERSION), id in any::<u64>(), request in request(), response in response()) {
        let body = encode_body(&RequestEnvelope { v, id, request }).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let refused = matches!(decode_request(&body), Err(ProtocolError::UnsupportedVersion { client, daemon }) if client == v && daemon == PROTOCOL_VERSION);
        prop_assert!(refused);
        let body = encode_body(&ResponseEnvelope { v, id, response }).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let refused = matches!(decode_response(&body), Err(ProtocolError::UnsupportedVersion { client, daemon }) if client == PROTOCOL_VERSION && daemon == v);
        prop_assert!(refused);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = peek_request_id(&bytes);
        let _ = parse_legacy(&bytes);
        if let Some(header) = bytes.first_chunk::<4>() {
            let _ = decode_frame_len(*header, MAX_FRAME_LEN);
        }
        let _ = read_frame(&mut bytes.as_slice(), MAX_FRAME_LEN);
    }
}
