"""The `distml` command line: one subcommand group per stage of the path.

Exit codes: 0 success, 1 bad input or environment (one line on stderr naming the file,
the field and what to do), 2 usage errors (click's own). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import sys

import click

from distml import __version__
from distml.cli.output import printable, redact
from distml.errors import DistmlError, os_error
from distml.training.cancel import Cancelled, sigterm_cancels

#: Exit code after SIGTERM, as a shell reports a process the signal ended (128 + 15).
EXIT_TERMINATED = 143


class _Main(click.Group):
    """Turns DistmlError, and OSError (disk full, permission denied...), into one actionable line and
    exit 1, unless --debug.

    SIGTERM (how KFP and Kubernetes stop a task) raises Cancelled, so staged output folders and
    started processes are cleaned up on the way out, as after Ctrl-C; the command then exits 143.
    """

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            with sigterm_cancels(f"distml {ctx.invoked_subcommand or ''}".strip()):
                return super().invoke(ctx)
        except (DistmlError, OSError) as err:
            if ctx.params.get("debug"):
                raise
            error = os_error(err) if isinstance(err, OSError) else err
            click.echo(f"error: {redact(printable(error))}", err=True)
            sys.exit(EXIT_TERMINATED if isinstance(err, Cancelled) else 1)


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="distml")
@click.option("--debug", is_flag=True, help="Show the full traceback of errors.")
def main(debug: bool) -> None:
    """kfp-distml: datasets, distributed training, per-shard inference and serving on Kubeflow."""


def _register() -> None:
    from distml.cli.data import data
    from distml.cli.demo import demo
    from distml.cli.infer import gather, infer
    from distml.cli.pipelines import compile_command, run_command, submit_command, upload_command
    from distml.cli.select import average_command, select_command
    from distml.cli.serve import deploy_command, serve_command
    from distml.cli.train import train

    main.add_command(data)
    for command in (select_command, average_command, serve_command, deploy_command):
        main.add_command(command)
    main.add_command(train)
    main.add_command(infer)
    main.add_command(gather)
    main.add_command(demo)
    for command in (compile_command, run_command, submit_command, upload_command):
        main.add_command(command)


_register()
