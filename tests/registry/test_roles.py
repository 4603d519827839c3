"""The one rule for the AuxEng lead(s), the one for the host manager and the one for the host tech lead:
pure functions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from auxeng.registry.roles import auxeng_lead, auxeng_leads, host_manager_email, host_tech_lead


@dataclass(frozen=True)
class M:
    email: str
    side: str = "auxeng"
    role: str = "engineer"
    lead: bool = False


@dataclass(frozen=True)
class Team:
    manager_email: str | None


ADVISOR = M("adv@x", role="advisor")
ENGINEER_1 = M("eng1@x")
ENGINEER_2 = M("eng2@x")
LEAD_ADVISOR = M("lead-adv@x", role="advisor", lead=True)
LEAD_ENGINEER = M("lead-eng@x", lead=True)
HOST_ENGINEER = M("host-eng@x", side="host")
HOST_LEAD = M("host-lead@x", side="host", role="tech_lead", lead=True)


@pytest.mark.parametrize(
    ("members", "leads"),
    [
        ([ENGINEER_1, LEAD_ENGINEER, LEAD_ADVISOR], [LEAD_ENGINEER, LEAD_ADVISOR]),  # every marked lead
        ([LEAD_ADVISOR, ENGINEER_1], [LEAD_ADVISOR]),  # a marked advisor is a lead
        ([ADVISOR, ENGINEER_1, ENGINEER_2], [ENGINEER_1]),  # none marked: the first engineer only
        ([ADVISOR], []),  # an advisor alone is not a lead
        ([HOST_LEAD, HOST_ENGINEER], []),  # the host side never leads
        ([HOST_LEAD, ENGINEER_2], [ENGINEER_2]),
        ([], []),
    ],
)
def test_the_auxeng_leads_are_the_marked_members_else_the_first_engineer(members, leads):
    assert auxeng_leads(members) == leads
    assert auxeng_lead(members) == (leads[0] if leads else None)


@pytest.mark.parametrize(
    ("team", "members", "manager"),
    [
        (Team("boss@team"), [M("m@x", side="host", role="manager")], "boss@team"),  # the team's first
        (Team(None), [HOST_ENGINEER, M("m@x", side="host", role="manager")], "m@x"),
        (None, [M("m@x", side="host", role="manager")], "m@x"),
        (Team(""), [M("a@x", side="auxeng", role="manager")], None),  # the platform side is not the host
        (None, [HOST_ENGINEER], None),
    ],
)
def test_the_host_manager_is_the_teams_else_the_host_member_with_role_manager(team, members, manager):
    assert host_manager_email(team, members) == manager


@pytest.mark.parametrize(
    ("members", "tech_lead"),
    [
        ([HOST_ENGINEER, HOST_LEAD, M("tl2@x", side="host", role="tech_lead")], HOST_LEAD),  # the first
        (
            [M("tl@x", side="auxeng", role="tech_lead"), HOST_ENGINEER],
            None,
        ),  # the platform side is not the host
        ([HOST_ENGINEER, M("lead@x", side="host", lead=True)], None),  # lead: true alone does not make one
        ([], None),
    ],
)
def test_the_host_tech_lead_is_the_first_host_member_with_that_role(members, tech_lead):
    assert host_tech_lead(members) == tech_lead
