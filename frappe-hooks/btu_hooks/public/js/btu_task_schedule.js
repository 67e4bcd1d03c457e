// btu_hooks: operator buttons and a read-only view of btu-daemon's plan on the BTU Task Schedule
// form (hooks.py: doctype_js). The buttons call the whitelisted methods of
// btu_hooks.schedule_actions; errors come back as Frappe messages (frappe.throw on the server).

// Wrapped in a function: Frappe may evaluate a form script more than once per page.
(() => {
	const BTU_METHODS = "btu_hooks.schedule_actions.";
	const BTU_GROUP = __("BTU Scheduler");

	frappe.ui.form.on("BTU Task Schedule", {
		refresh(frm) {
			if (frm.is_new()) {
				return;
			}
			if (frm.has_perm("write")) {
				btu_add_buttons(frm);
			}
			btu_load_overview(frm);
		},
	});

	function btu_call(frm, method, args, on_done) {
		return frappe.call({
			method: BTU_METHODS + method,
			args: Object.assign({ schedule: frm.doc.name }, args || {}),
			freeze: true,
			freeze_message: __("Asking btu-daemon..."),
			callback(r) {
				if (!r.exc && r.message) {
					if (on_done) {
						on_done(r.message);
					} else {
						frappe.show_alert({ message: frappe.utils.escape_html(r.message.message), indicator: "green" }, 7);
					}
					btu_load_overview(frm);
				}
			},
		});
	}

	function btu_add_buttons(frm) {
		frm.add_custom_button(__("Pause"), () => {
			const d = new frappe.ui.Dialog({
				title: __("Pause {0}", [frm.doc.name]),
				fields: [
					{ fieldname: "note", fieldtype: "Small Text", label: __("Note"),
					  description: __("Why it is paused (kept with the pause and in the daemon's audit trail).") },
					{ fieldname: "until", fieldtype: "Datetime", label: __("Until"),
					  description: __("Empty: until resumed.") },  // Desk adds the user's time zone
				],
				primary_action_label: __("Pause"),
				primary_action(values) {
					d.hide();
					btu_call(frm, "pause", { note: values.note || null, until: values.until || null });
				},
			});
			d.show();
		}, BTU_GROUP);

		frm.add_custom_button(__("Resume"), () => btu_call(frm, "resume"), BTU_GROUP);

		frm.add_custom_button(__("Skip next"), () => {
			frappe.prompt(
				[{ fieldname: "count", fieldtype: "Int", label: __("Number of runs to skip"), default: 1, reqd: 1 }],
				(values) => btu_call(frm, "skip_next", { count: values.count }),
				__("Skip the next runs of {0}", [frm.doc.name]),
				__("Skip"),
			);
		}, BTU_GROUP);

		frm.add_custom_button(__("Run now"), () => {
			frappe.confirm(__("Enqueue {0}'s task now, outside its schedule?", [frm.doc.name]),
				() => btu_call(frm, "run_now"));
		}, BTU_GROUP);

		frm.add_custom_button(__("Backfill"), () => {
			const d = new frappe.ui.Dialog({
				title: __("Backfill {0}", [frm.doc.name]),
				fields: [
					{ fieldname: "start", fieldtype: "Datetime", label: __("From"), reqd: 1 },
					{ fieldname: "end", fieldtype: "Datetime", label: __("Until (excluded)"), reqd: 1 },
					{ fieldname: "max", fieldtype: "Int", label: __("At most"), default: 1000 },
					{ fieldname: "dry_run", fieldtype: "Check", label: __("Dry run (only list the runs)"), default: 1 },
				],
				primary_action_label: __("Backfill"),
				primary_action(values) {
					d.hide();
					btu_call(frm, "backfill", values, (answer) => btu_show_backfill(answer));
				},
			});
			d.show();
		}, BTU_GROUP);
	}

	function btu_show_backfill(answer) {
		const e = frappe.utils.escape_html;
		const rows = (answer.runs || []).map((r) =>
			`<tr><td>${e(r.local)}</td><td>${e(r.utc)}</td><td>${e(r.status)}</td><td><code>${e(r.job_id)}</code></td></tr>`
		).join("");
		frappe.msgprint({
			title: answer.dry_run ? __("Backfill (dry run)") : __("Backfill"),
			indicator: "green",
			message: `<p>${e(answer.message)}</p>` + (rows ? `<table class="table table-bordered table-sm">
				<thead><tr><th>${__("Local")}</th><th>${__("UTC")}</th><th>${__("Status")}</th><th>${__("Job")}</th></tr></thead>
				<tbody>${rows}</tbody></table>` : ""),
			wide: true,
		});
	}

	function btu_overview_wrapper(frm) {
		const field = frm.fields_dict.btu_runs_html;
		if (field) {
			return field.$wrapper;
		}
		// Custom Fields not installed yet (bench migrate pending): a dashboard section instead.
		if (!frm.btu_overview_section) {
			frm.btu_overview_section = frm.dashboard.add_section("", __("btu-daemon"));
		}
		return frm.btu_overview_section;
	}

	function btu_load_overview(frm) {
		const $wrapper = btu_overview_wrapper(frm);
		$wrapper.html(`<div class="text-muted">${__("Loading runs from btu-daemon...")}</div>`);
		frappe.call({
			method: BTU_METHODS + "overview",
			args: { schedule: frm.doc.name },
			callback(r) {
				if (r.message) {
					$wrapper.html(btu_render_overview(r.message));
				}
			},
			error() {
				$wrapper.html(`<div class="text-danger">${__("Could not load the runs.")}</div>`);
			},
		});
	}

	const BTU_OUTCOME_COLOURS = {
		enqueued: "green", replaced: "blue", skipped_overlap: "orange", skipped_paused: "orange",
		skipped_by_request: "orange", skipped_missed: "red",
	};

	function btu_render_overview(data) {
		const e = frappe.utils.escape_html;
		let html = "";
		if (data.error) {
			html += `<div class="alert alert-warning">${e(data.error)}</div>`;
		}
		if (data.paused) {
			const until = data.paused.until_utc ? __("until {0}", [e(data.paused.until_utc)]) : __("until resumed");
			const note = data.paused.note ? ` &mdash; ${e(data.paused.note)}` : "";
			html += `<div class="indicator-pill orange" style="margin-bottom: 10px">${__("Paused")} ${until}${note}</div>`;
		} else if (!data.error) {
			html += `<div class="indicator-pill green" style="margin-bottom: 10px">${__("Not paused")}</div>`;
		}
		const upcoming = (data.upcoming || []).map((r, i) =>
			`<tr><td>${i + 1}</td><td>${e(r.local)}</td><td>${e(r.utc)}</td>` +
			`<td>${r.note ? `<span class="indicator-pill orange">${e(r.note)}</span>` : ""}</td></tr>`
		).join("") || `<tr><td colspan="4" class="text-muted">${__("No planned runs")}</td></tr>`;
		const history = (data.history || []).map((r) =>
			`<tr><td>${e(r.due_local)}</td><td>${e(r.due_utc)}</td>` +
			`<td><span class="indicator-pill ${BTU_OUTCOME_COLOURS[r.outcome] || "gray"}">${e(r.outcome)}</span></td>` +
			`<td>${e(r.lateness)}</td><td><code>${e(r.job_id)}</code></td></tr>`
		).join("") || `<tr><td colspan="5" class="text-muted">${__("No runs yet")}</td></tr>`;
		const table = 'class="table table-bordered table-sm" style="white-space: nowrap; font-size: var(--text-sm)"';
		html += `<div class="row">
			<div class="col-12"><h6>${__("Next 10 runs")}</h6><div class="table-responsive">
				<table ${table}><thead><tr><th>#</th><th>${__("Local")}</th>
				<th>${__("UTC")}</th><th></th></tr></thead><tbody>${upcoming}</tbody></table></div></div>
			<div class="col-12"><h6>${__("Last 20 outcomes")}</h6><div class="table-responsive">
				<table ${table}><thead><tr><th>${__("Due (local)")}</th><th>${__("Due (UTC)")}</th>
				<th>${__("Outcome")}</th><th>${__("Lateness")}</th><th>${__("Job")}</th></tr></thead><tbody>${history}</tbody></table></div></div>
		</div>`;
		return html;
	}
})();
