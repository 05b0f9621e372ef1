"""``cardkit doctor``: the card setup of this computer, checked, with what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from cardkit.cli._base import State, json_option
from cardkit.doctor import Context, diagnose
from cardkit.doctor.installation import installed_agent
from cardkit.doctor.model import Report
from cardkit.doctor.render import render_html, render_json, render_text
from cardkit.i18n import detect_language, translator


@click.command()
@click.option("--origin", help="the portal's origin to check against the agent (https://...)")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write a self-contained HTML report here",
)
@click.option(
    "--bundle",
    "bundle_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write a zip (report + recent logs, names/NIRs/PINs removed) for a ticket",
)
@click.option("--fix", is_flag=True, help="offer the safe fixes for what is found")
@click.option("--yes", is_flag=True, help="with --fix: apply without asking")
@click.option("--online", is_flag=True, help="also check revocation (OCSP/CRL) and the clock")
@click.option("--clock-url", help="with --online: a server whose Date header is the reference")
@click.option(
    "--trust",
    type=click.Choice(["test", "production"]),
    default="test",
    show_default=True,
    help="IGC-Santé roots to check certificates against",
)
@click.option("--trust-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--module", "module_path", help="a PKCS#11 module to check besides the usual ones")
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="seconds each check may take"
)
@click.option("--lang", type=click.Choice(["fr", "en"]), help="default: from the locale")
@json_option
@click.pass_obj
def doctor(  # noqa: PLR0917 - click passes options positionally
    state: State,
    origin: str | None,
    html_file: Path | None,
    bundle_file: Path | None,
    fix: bool,
    yes: bool,
    online: bool,
    clock_url: str | None,
    trust: str,
    trust_dir: Path | None,
    module_path: str | None,
    timeout: float,
    lang: str | None,
    as_json: bool,
) -> None:
    """Check what reading CPS/CPE and Vitale cards needs on this computer, and say how to
    fix what is not right. Exit 0 all ok, 1 warnings, 2 problems. No PIN is ever asked
    nor any PIN try spent."""
    from cardkit.auth.origin import normalize_origin

    language = lang or detect_language()
    ctx = Context(
        backend_factory=lambda: state.backend,
        language=language,
        origin=normalize_origin(origin) if origin else None,
        trust=trust,
        trust_dir=trust_dir,
        online=online,
        clock_url=clock_url,
        module=module_path,
        agent=installed_agent(),
        timeout=timeout,
    )
    _ = translator(language).gettext
    err = Console(stderr=True)
    if as_json or not sys.stderr.isatty():
        report = diagnose(ctx)
    else:
        with err.status(_("Checking...")) as status:
            report = diagnose(
                ctx, lambda name: status.update(_("Checking {name}...").format(name=name))
            )
    if as_json:
        click.echo(render_json(report))
    else:
        render_text(report, state.console)
    if html_file is not None:
        html_file.write_text(render_html(report), encoding="utf-8")
        err.print(_("HTML report: {path}").format(path=html_file))
    if bundle_file is not None:
        from cardkit.doctor.bundle import write_bundle

        write_bundle(report, bundle_file, ctx.agent.audit_log() if ctx.agent else None)
        err.print(_("Bundle for your ticket: {path}").format(path=bundle_file))
    if fix:
        _apply_fixes(report, ctx, yes, err)
    sys.exit(report.exit_code)


def _apply_fixes(report: Report, ctx: Context, yes: bool, err: Console) -> None:
    """The safe fixes: start the PC/SC service, install the agent's autostart, allow the
    portal's origin. Each is asked first (unless --yes) and reported."""
    from cardkit.doctor.fixes import available_fixes

    _ = translator(ctx.language).gettext
    fixes = available_fixes(report, ctx)
    if not fixes:
        err.print(_("Nothing the doctor can fix by itself."))
        return
    for fix in fixes:
        if yes or click.confirm(fix.question, default=False, err=True):
            err.print(fix.apply())
