"""Synthetic registries of any size, for benchmarks and scale tests (deterministic per seed)."""

from __future__ import annotations

import random
from datetime import date, timedelta

_ORGS = ("Commerce", "Logistics", "Customer", "Data Platform", "Finance", "Marketplace")
_TIMEZONES = ("Europe/Berlin", "Europe/London", "America/New_York", "America/Chicago", "Asia/Kolkata")


def synthetic_registry_yaml(
    engagements: int,
    *,
    teams: int = 500,
    platform_people: int = 200,
    seed: int = 0,
    first_start: date = date(2024, 1, 1),
) -> str:
    """A valid registry with ``engagements`` engagements spread over about three years."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    lines = [
        "program:",
        "  name: AuxEng",
        "  managers:",
        "    - {name: Dana Ruiz, email: dana@example.com, slack_id: U0DANA}",
        "  stakeholders: [vp-eng@example.com, dana@example.com]",
        "teams:",
    ]
    for t in range(teams):
        lines += [
            f"  - key: team-{t:04d}",
            f"    name: Team {t}",
            f"    org: {_ORGS[t % len(_ORGS)]}",
            f"    manager: {{name: Manager {t}, email: manager{t}@example.com, slack_id: U0MGR{t}}}",
        ]
    lines.append("people:")
    for p in range(platform_people):
        lines.append(
            f"  - {{email: eng{p}@example.com, name: Engineer {p}, slack_id: U0ENG{p}, timezone: {_TIMEZONES[p % len(_TIMEZONES)]}}}"
        )
    lines.append("engagements:")
    span = 3 * 365
    for e in range(engagements):
        team = rng.randrange(teams)
        start = first_start + timedelta(days=rng.randrange(span))
        end = start + timedelta(days=rng.randrange(28, 84))
        engineer = rng.randrange(platform_people)
        advisor = (engineer + 1 + rng.randrange(platform_people - 1)) % platform_people
        lines += [
            f"  - key: SYN-{e:06d}",
            f"    title: Synthetic engagement {e}",
            f"    host_team: team-{team:04d}",
            f"    start: {start.isoformat()}",
            f"    end: {end.isoformat()}",
        ]
        if e % 17 == 0:
            lines.append("    status: cancelled")
        lines += [
            "    auxeng:",
            f"      - {{email: eng{engineer}@example.com, role: engineer, lead: true}}",
            f"      - {{email: eng{advisor}@example.com, role: advisor}}",
            "    host:",
            f"      - {{email: lead{team}@example.com, role: tech_lead}}",
            f"      - {{email: dev{team}a@example.com, role: engineer}}",
            f"      - {{email: dev{team}b@example.com, role: engineer}}",
            f"      - {{email: manager{team}@example.com, role: manager}}",
        ]
    return "\n".join(lines) + "\n"
