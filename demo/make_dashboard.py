"""Write `config/smart_charge_dashboard.yaml` from the sites in `sites.py`.

.venv/bin/python demo/make_dashboard.py
"""

from __future__ import annotations

from pathlib import Path
import sys
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sites import SITES, DemoSite


def _slug(text: str) -> str:
    return text.lower().replace(" ", "_").replace("-", "_")


def _panel_cards(prefix: str, name: str, rating: float, chargers: list[str]) -> list:
    power = [f"sensor.{prefix}_allocated_power", f"sensor.{prefix}_measured_power"]
    cards: list[dict[str, Any]] = [
        {
            "type": "entities",
            "title": f"{name} ({rating:g} kW breaker)",
            "state_color": True,
            "entities": [
                {"entity": f"number.{prefix}_grid_limit", "name": "Grid limit"},
                {"entity": f"select.{prefix}_strategy", "name": "Strategy"},
                {"entity": power[0], "name": "Allocated"},
                {"entity": power[1], "name": "Measured"},
                {"entity": f"sensor.{prefix}_headroom", "name": "Headroom"},
                {"entity": f"sensor.{prefix}_active_sessions", "name": "Sessions"},
            ],
        },
        {
            "type": "history-graph",
            "title": f"{name}: power vs limit",
            "hours_to_show": 0.25,
            "entities": [
                {"entity": f"number.{prefix}_grid_limit", "name": "Limit"},
                {"entity": power[0], "name": "Allocated"},
                {"entity": power[1], "name": "Measured"},
            ],
        },
    ]
    if chargers:
        cards.append(
            {
                "type": "glance",
                "title": f"{name}: chargers (kW, allocated A)",
                "columns": 4,
                "state_color": True,
                "entities": [
                    {"entity": f"sensor.{_slug(c)}_power", "name": c} for c in chargers
                ]
                + [
                    {"entity": f"sensor.{_slug(c)}_allocated_current", "name": c}
                    for c in chargers
                ],
            }
        )
    return [{"type": "vertical-stack", "cards": cards}]


# The plan attribute ([{start, end, power_kw}]) drawn as bars in a built-in markdown card.
PLAN_MARKDOWN = """\
{%- set plan = state_attr('sensor.SLUG_planned_energy', 'plan') or [] %}
{%- if not plan %}No plan: the car charges as fast as it may.{% endif %}
{%- set top = plan | map(attribute='power_kw') | max if plan else 1 %}
{%- for p in plan %}
- `{{ as_timestamp(p.start) | timestamp_custom('%a %H:%M') }}-\
{{ as_timestamp(p.end) | timestamp_custom('%H:%M') }}` \
{{ '█' * ((p.power_kw / (top or 1) * 10) | round(0, 'ceil') | int) }} \
{{ '%.1f' | format(p.power_kw) }} kW
{%- endfor %}"""


def _plan_card(charger_id: str, root: str) -> dict[str, Any]:
    """Return the goal entities and the plan of one charger (and its site's peak)."""
    slug = _slug(charger_id)
    return {
        "type": "vertical-stack",
        "cards": [
            {
                "type": "entities",
                "title": f"{charger_id}: charging goal",
                "entities": [
                    {"entity": f"{domain}.{slug}_{key}", "name": name}
                    for domain, key, name in (
                        ("select", "charging_mode", "Mode"),
                        ("number", "energy_to_add", "Energy to add"),
                        ("datetime", "departure", "Departure"),
                        ("sensor", "planned_energy", "Planned energy"),
                        ("sensor", "planned_finish", "Planned finish"),
                        ("sensor", "next_charging_start", "Next start"),
                        ("sensor", "limit_reason", "Limit reason"),
                    )
                ]
                + [
                    {
                        "entity": f"sensor.{root}_planned_peak",
                        "name": "Site planned peak",
                    }
                ],
            },
            {
                "type": "markdown",
                "title": f"{charger_id}: plan (hourly prices of the home tariff)",
                "content": PLAN_MARKDOWN.replace("SLUG", slug),
            },
        ],
    }


def _view(site: DemoSite) -> dict[str, Any]:
    root_name = "Main breaker" if site.title == "Office" else "Main fuse"
    panels = [(site.root_object_id, root_name, site.main_breaker_kw, "main")]
    panels += [(_slug(p.name), p.name, p.limit_kw, p.panel_id) for p in site.panels]
    gauges = {
        "type": "grid",
        "columns": min(3, len(panels)),
        "square": False,
        "cards": [
            {
                "type": "gauge",
                "entity": f"sensor.{prefix}_measured_power",
                "name": name,
                "min": 0,
                "max": rating,
                "needle": True,
                "severity": {"green": 0, "yellow": rating * 0.8, "red": rating * 0.95},
            }
            for prefix, name, rating, _ in panels
        ],
    }
    cards: list[dict[str, Any]] = [gauges]
    for prefix, name, rating, panel_id in panels:
        chargers = [c.charger_id for c in site.chargers if c.panel == panel_id]
        cards += _panel_cards(prefix, name, rating, chargers)
    cards += [
        _plan_card(c.charger_id, site.root_object_id)
        for c in site.chargers
        if c.goal_mode
    ]
    if site.load_sensor:
        cards.append(
            {
                "type": "vertical-stack",
                "cards": [
                    {
                        "type": "entities",
                        "title": "House",
                        "entities": [
                            "input_number.home_base_load",
                            {"entity": site.load_sensor, "name": "House load"},
                            {"entity": "sensor.home_solar_power", "name": "Solar"},
                            {"entity": "sensor.home_grid_power", "name": "Grid meter"},
                        ],
                    },
                    {
                        "type": "history-graph",
                        "title": "House load and solar",
                        "hours_to_show": 0.25,
                        "entities": [
                            site.load_sensor,
                            "sensor.home_solar_power",
                            "sensor.home_grid_power",
                        ],
                    },
                ],
            }
        )
    return {
        "title": site.title,
        "path": site.title.lower(),
        "icon": "mdi:office-building" if site.title == "Office" else "mdi:home",
        "cards": cards,
    }


def main() -> None:
    """Write the dashboard."""
    dashboard = {"title": "Smart Charge", "views": [_view(site) for site in SITES]}
    target = Path(__file__).resolve().parent / "config" / "smart_charge_dashboard.yaml"
    header = "# Generated by demo/make_dashboard.py from demo/sites.py.\n"
    target.write_text(header + yaml.safe_dump(dashboard, sort_keys=False, width=100))


if __name__ == "__main__":
    main()
