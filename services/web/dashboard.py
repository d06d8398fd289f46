"""« Tableau de bord de la campagne » (agents only): the insights service's live tables, drawn as
SVG bar charts on the server, each beside the table of its figures. Capacities come with them:
insights folds enrolment's SchoolCapacityChanged events into its school figures."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.backoffice import QUEUE_STATUSES, Services, _checked, _page
from services.web.charts import bar_chart
from services.web.dates import numeric_date, numeric_datetime
from services.web.session import CurrentAgent

router = APIRouter()
DASHBOARD = "/agents/tableau-de-bord"
DAYS_SHOWN = 14
FUNNEL_STEPS = {
    "registered": "Compte créé", "activated": "Compte activé", "file_started": "Dossier commencé (une pièce envoyée)",
    "submitted": "Dossier transmis", "validated": "Dossier validé", "enrolled": "Enfant inscrit",
}
WAITING_FOR = {"agent": "le Service", "family": "la famille"}
DOCUMENT_KINDS = {
    "proof_of_address": "justificatif de domicile", "guardian_identity": "pièce d'identité d'un parent",
    "child_identity": "pièce d'identité de l'enfant", "sworn_statement": "attestation sur l'honneur",
}


def correction_label(item: str) -> str:
    if item.startswith("document:"):
        kind = item.removeprefix("document:")
        return f"Pièce : {DOCUMENT_KINDS.get(kind, kind)}"
    return f"Champ : {item}"


def school_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insights' rows; a school not announced yet by enrolment is shown by its id, without capacity."""
    return [{**r, "school_name": r.get("school_name") or r["school_id"], "capacity": r.get("capacity")} for r in rows]


@router.get(DASHBOARD, response_class=HTMLResponse, summary="Back-office: the campaign's dashboard (charts and tables)")
async def dashboard(request: Request, agent: CurrentAgent, services: Services) -> HTMLResponse:
    files_reply, schools_reply, funnel_reply = await asyncio.gather(
        services.get("insights", "/files", agent.access_token), services.get("insights", "/schools", agent.access_token),
        services.get("insights", "/funnel", agent.access_token))
    files, funnel = _checked(request, files_reply), _checked(request, funnel_reply)
    schools = school_rows(_checked(request, schools_reply)["rows"])
    days = files["per_day"][-DAYS_SHOWN:]
    by_status = files["by_status"]
    charts = {
        "status": bar_chart("etat", "Dossiers par état", "Nombre de dossiers dans chaque état, en ce moment.",
                            ["Dossiers"], [(QUEUE_STATUSES.get(s, s), [n]) for s, n in by_status.items()]),
        "days": bar_chart("jours", f"Dossiers transmis et décidés, {len(days)} derniers jours",
                          "Par jour (heure de Paris) : dossiers transmis (envois à nouveau compris) et décisions prises.",
                          ["Transmis", "Décidés"], [(numeric_date(d["day"]), [d["submitted"], d["decided"]]) for d in days]),
        "funnel": bar_chart("parcours", "Parcours des familles",
                            "Familles ayant atteint chaque étape (ou une étape plus loin).", ["Familles"],
                            [(label, [funnel["reached"].get(step, 0)]) for step, label in FUNNEL_STEPS.items()]),
        "schools": bar_chart("ecoles", "Inscriptions confirmées et capacité",
                             "Par école, niveau et année scolaire : inscriptions confirmées, et capacité d'accueil.",
                             ["Confirmées", "Capacité"],
                             [(f"{r['school_name']} · {r['level']} · {r['school_year']}", [r["confirmed"], r["capacity"] or 0])
                              for r in schools]),
    }
    context = {
        "generated": numeric_datetime(files["generated_at"]), "charts": charts, "statuses": QUEUE_STATUSES,
        "by_status": by_status, "days": [{**d, "label": numeric_date(d["day"])} for d in days],
        "delays": files["decision_delays"][-8:], "waiting_for": WAITING_FOR,
        "backlog": [{**b, "since": numeric_datetime(b["oldest_waiting_since"]) if b["oldest_waiting_since"] else ""}
                    for b in files["backlog"]],
        "overdue": files["overdue"], "threshold": files["overdue_threshold_working_days"],
        "corrections": files["corrections"],
        "correction_items": [{"label": correction_label(i["item"]), "count": i["count"]} for i in files["corrections"]["top_items"]],
        "schools": schools, "steps": FUNNEL_STEPS, "funnel": funnel,
    }
    return _page(request, "agent_dashboard.html", context)
