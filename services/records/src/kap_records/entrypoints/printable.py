"""The printable rendering of a PMF (HTML, one section per part of the REMS form).
Every value is escaped; the form holds ids, codes, numbers and times only."""

from __future__ import annotations

from html import escape
from typing import Any

SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "1. Patient and setting",
        (("patient_rems_id", "Patient REMS id"), ("setting_rems_id", "Setting REMS id")),
    ),
    (
        "2. Concomitant medications",
        (
            (
                "concomitant_medications",
                "Benzodiazepines, sedative hypnotics, psychostimulants, MAOIs, opioids",
            ),
        ),
    ),
    (
        "3. Healthcare providers",
        (("prescriber_id", "Prescriber"), ("monitoring_hcp_id", "HCP conducting monitoring")),
    ),
    (
        "5. Treatment",
        (
            ("session_date", "Treatment date"),
            ("doses", "Devices, doses and lot numbers"),
            ("total_dose_mg", "Dose administered (mg)"),
        ),
    ),
    (
        "6-7. Duration",
        (
            ("monitoring_minutes", "Minutes from the 1st device to completion of monitoring"),
            ("ready_to_leave_minutes", "Minutes until ready to leave (REMS question)"),
        ),
    ),
    (
        "8-9. Vital signs",
        (
            ("vitals_acceptable_pre_dose", "Acceptable prior to administration"),
            ("vitals_acceptable_pre_completion", "Acceptable prior to completion"),
            ("bp_pre_dose", "BP prior to administration"),
            ("bp_40_min", "BP ~40 min after administration"),
            ("bp_pre_discharge", "BP prior to completion"),
            ("spo2_checks", "Pulse oximetry checks"),
        ),
    ),
    (
        "10-11. Sedation, dissociation, adverse events",
        (
            ("sedation", "Sedation"),
            ("dissociation", "Dissociation"),
            ("adverse_events", "Serious adverse events (critical alerts)"),
            ("discharge", "Discharge"),
        ),
    ),
)


def _value(value: Any) -> str:
    if value is None:
        return '<span class="missing">to complete</span>'
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict):
        if {"systolic", "diastolic"} <= set(value):
            return escape(
                f"{value['systolic']}/{value['diastolic']} mmHg at {value['recorded_at']}"
            )
        return "<br>".join(f"{escape(str(k))}: {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "none"
        return "<br>".join(_value(v) for v in value)
    return escape(str(value))


def render(form: dict[str, Any]) -> str:
    fields = form["fields"]
    rows = []
    for title, items in SECTIONS:
        rows.append(f"<h2>{escape(title)}</h2><table>")
        for name, label in items:
            flag = ' class="missing-row"' if name in form["missing_fields"] else ""
            rows.append(
                f"<tr{flag}><th>{escape(label)}</th><td>{_value(fields.get(name))}</td></tr>"
            )
        rows.append("</table>")
    missing = ", ".join(form["missing_fields"]) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Spravato REMS Patient Monitoring Form {escape(form["pmf_id"])}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #999; padding: .3em .5em; text-align: left; vertical-align: top; }}
th {{ width: 40%; }} .missing {{ color: #a00; font-style: italic; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>Spravato REMS Patient Monitoring Form</h1>
<p>Form {escape(form["pmf_id"])}, session {escape(form["session_id"])},
patient {escape(form["patient_id"])}, site {escape(form["site_id"])}.<br>
Status: <strong>{escape(form["status"])}</strong>; due by {escape(form["due_by"])}
({escape(form["rule_id"])}). Missing: {escape(missing)}.</p>
{"".join(rows)}
</body></html>
"""
