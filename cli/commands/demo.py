"""``skills demo``: build, install, run, quarantine, re-enable, and show the index and journal."""

from __future__ import annotations

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.output import emit, json_text, table


@click.command("demo")
@global_options
def demo() -> None:
    """Run the whole story in a fresh home (a temporary one unless --home is given)."""
    from skill_ledger.adapters.demo import run_demo

    o = obj()
    steps: list[dict] = []

    def step(title: str, details: dict) -> None:
        steps.append({"step": title, **details})
        if not o.as_json:
            click.secho(f"==> {title}", bold=True)
            for k, v in details.items():
                if k not in ("entries",):
                    click.echo(f"    {k}: {v if not isinstance(v, (dict, list)) else json_text(v, pretty=False)}")

    result = run_demo(o.home, actor=o.actor, step=step)

    def human(d: dict) -> None:
        click.secho("==> the installed-skills index", bold=True)
        table(["skill", "version", "status", "eligible", "last audit"],
              [[e["skill_id"], e["version"], e["status"], "yes" if e["eligibility"]["eligible"] else "no",
                f"{e['last_audit']['trigger']}: {'passed' if e['last_audit']['passed'] else 'FAILED'}"]
               for e in d["index"]])
        click.secho("==> the journal (every decision, hash-chained)", bold=True)
        for e in d["journal"]:
            click.echo(f"#{e['position']:<3} {e['kind']:<26} {e['stream']:<24} {e['hash'][:16]}")
        click.echo(f"state kept in {d['home']} (try: skills --home {d['home']} history examples.hello)")

    emit(o.as_json, {**result, "steps": steps}, human)


COMMANDS = [demo]
