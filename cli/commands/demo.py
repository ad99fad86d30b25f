"""``skills demo``: build, install, run, quarantine, re-enable, and show the index and journal."""

from __future__ import annotations

import click

from skill_ledger.cli.base import global_options, obj, set_interrupt_state
from skill_ledger.cli.output import emit, json_text, safe, table


@click.command("demo")
@click.option("--force", is_flag=True, help="Run in the --home given even when it is not empty (its journal gets "
              "the demo's events).")
@global_options
def demo(force: bool) -> None:
    """Run the whole story in a fresh home: a temporary one, or --home DIR when DIR is new or
    empty (a non-empty one is refused unless --force)."""
    from skill_ledger.adapters.demo import run_demo

    o = obj()
    steps: list[dict] = []

    def step(title: str, details: dict) -> None:
        steps.append({"step": title, **details})
        if not o.as_json:
            click.secho(f"==> {safe(title)}", bold=True)
            for k, v in details.items():
                if k not in ("entries",):
                    shown = v if not isinstance(v, (dict, list)) else json_text(v, pretty=False)
                    click.echo(f"    {k}: {safe(shown)}")

    set_interrupt_state("the demo's home holds what was done up to the interrupt; it is only a demo: "
                        "delete it, or look around it with skills --home DIR history examples.hello")
    result = run_demo(o.home, actor=o.actor, step=step, force=force)

    def human(d: dict) -> None:
        click.secho("==> the installed-skills index", bold=True)
        table(["skill", "version", "status", "eligible", "last audit"],
              [[e["skill_id"], e["version"], e["status"], "yes" if e["eligibility"]["eligible"] else "no",
                f"{e['last_audit']['trigger']}: {'passed' if e['last_audit']['passed'] else 'FAILED'}"]
               for e in d["index"]])
        click.secho("==> the journal (every decision, hash-chained)", bold=True)
        for e in d["journal"]:
            click.echo(safe(f"#{e['position']:<3} {e['kind']:<26} {e['stream']:<24} {e['hash'][:16]}"))
        click.echo(safe(f"state kept in {d['home']} (try: skills --home {d['home']} history examples.hello)"))

    emit(o.as_json, {**result, "steps": steps}, human)


COMMANDS = [demo]
