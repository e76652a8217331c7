"""The printed report: one table per section, then every target with PASS/MISS."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import TIMES, Section, Target, fmt


def _value(target: Target, value: float) -> str:
    if target.unit == TIMES:
        return fmt(value) + TIMES
    if target.unit == "s":
        return fmt(value, 3) + " s"
    if target.unit == "%":
        return f"{value:+.2f} %"
    if target.unit == "ms":
        return fmt(value) + " ms"
    return fmt(value, 0)


def section_table(section: Section) -> Table:
    table = Table(title=section.title, title_justify="left", show_lines=False)
    for i, column in enumerate(section.columns):
        table.add_column(column, justify="left" if i < 2 else "right", overflow="fold")
    for row in section.rows:
        table.add_row(*row)
    return table


def targets_table(targets: list[Target]) -> Table:
    table = Table(title="Targets", title_justify="left")
    for column in ("section", "target", "measured", "limit", "result", "detail"):
        table.add_column(column, overflow="fold")
    for target in targets:
        result = "[green]PASS[/green]" if target.passed else "[red]MISS[/red]"
        table.add_row(
            target.section,
            target.name,
            _value(target, target.measured),
            f"{target.op} {_value(target, target.limit)}",
            result,
            target.detail,
        )
    return table


def environment_line(env: dict[str, Any]) -> str:
    packages = env.get("packages", {})
    redis_server = env.get("redis_server", {})
    return (
        f"Python {env.get('python')} · langgraph {packages.get('langgraph')} · "
        f"langgraph-checkpoint-redis {packages.get('langgraph-checkpoint-redis')} · "
        f"redis-py {packages.get('redis')} · Redis {redis_server.get('version')} "
        f"({', '.join(redis_server.get('modules', []))}) · {env.get('cores')} cores "
        f"{env.get('cpu_model')} · load average {env.get('load_average')}"
    )


def render(console: Console, env: dict[str, Any], sections: list[Section]) -> None:
    console.print(environment_line(env))
    for section in sections:
        console.print()
        console.print(section_table(section))
        for note in section.notes:
            console.print(f"  [dim]{note}[/dim]")
        console.print(f"  [dim]{fmt(section.seconds, 1)} s[/dim]")
    console.print()
    console.print(targets_table([t for s in sections for t in s.targets]))
    ablations = [a for s in sections for a in s.ablations]
    if ablations:
        console.print()
        console.print(
            "Ablation rows (mechanisms left out of the service, and what they would buy):"
        )
        for ablation in ablations:
            console.print(f"  {ablation}")
