"""The `distml` command line: one subcommand group per stage of the path.

Exit codes: 0 success, 1 bad input or environment (one line on stderr naming the file,
the field and what to do), 2 usage errors (click's own). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import importlib
import sys

import click

from distml import __version__
from distml.cli.output import printable, redact
from distml.errors import DistmlError, os_error
from distml.training.cancel import Cancelled, sigterm_cancels

#: Exit code after SIGTERM, as a shell reports a process the signal ended (128 + 15).
EXIT_TERMINATED = 143

#: Each subcommand and where it lives: imported only when it runs (or for --help). A command
#: runs without the imports of the others: about 0.2 s of `distml infer`'s start (issue 15).
SUBCOMMANDS = {
    "data": "distml.cli.data:data",
    "select": "distml.cli.select:select_command",
    "average": "distml.cli.select:average_command",
    "serve": "distml.cli.serve:serve_command",
    "deploy": "distml.cli.serve:deploy_command",
    "train": "distml.cli.train:train",
    "infer": "distml.cli.infer:infer",
    "gather": "distml.cli.infer:gather",
    "demo": "distml.cli.demo:demo",
    "compile": "distml.cli.pipelines:compile_command",
    "run": "distml.cli.pipelines:run_command",
    "submit": "distml.cli.pipelines:submit_command",
    "upload": "distml.cli.pipelines:upload_command",
}


class _Main(click.Group):
    """Loads subcommands on demand; turns DistmlError, and OSError (disk full, permission denied...),
    into one actionable line and exit 1, unless --debug.

    SIGTERM (how KFP and Kubernetes stop a task) raises Cancelled, so staged output folders and
    started processes are cleaned up on the way out, as after Ctrl-C; the command then exits 143.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

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
