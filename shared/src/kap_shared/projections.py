"""Columns of the rows a service keeps about another service's events, declared once
for every service that keeps them (each on its own registry and database)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class PlanColumns(SQLModel):
    """A treatment plan as scheduling's TreatmentPlanCreated announced it. Mix in after
    the service's table base, which brings the service's registry:
    `class Plan(MonitoringTable, PlanColumns, table=True)`."""

    plan_id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(max_length=64)
    route: str = Field(max_length=32)
    protocol: str = Field(max_length=64)
    prescriber_id: str = Field(max_length=64)
