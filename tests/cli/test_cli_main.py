"""The `distml` entry point: subcommands are imported only when they run."""

import ast
import subprocess
import sys

import click

from distml.cli import SUBCOMMANDS, main


def test_every_subcommand_resolves_to_its_command():
    context = click.Context(main)
    for name in SUBCOMMANDS:
        command = main.get_command(context, name)
        assert isinstance(command, click.Command) and command.name == name


def test_infer_starts_without_importing_the_other_subcommands():
    """Issue 15: half of `distml infer`'s start was importing every subcommand (pipelines, serving, training)."""
    code = (
        "import sys\n"
        "from distml.cli import main\n"
        "try:\n"
        "    main(['infer', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('distml.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    subcommand_modules = {target.split(":")[0] for target in SUBCOMMANDS.values()}
    assert imported & subcommand_modules == {"distml.cli.infer"}
