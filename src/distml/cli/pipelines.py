"""`distml compile|run|submit|upload`: the pipelines, compiled, run locally or sent to a cluster.

KFP is imported inside each command (through distml.runs) so `distml --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from distml.cli.options import finite_callback, non_empty_callback, option_errors
from distml.cli.output import make_console
from distml.errors import DistmlError

if TYPE_CHECKING:
    from distml.runs import TaskProgress

console = make_console()
progress_console = make_console(stderr=True)

_PARAM_HELP = "Pipeline parameter, converted to its declared type (lists and dicts as JSON). Repeatable."
_HOST_HELP = "Kubeflow Pipelines API URL, e.g. http://localhost:8080 [env KF_PIPELINES_ENDPOINT]."


def _show_progress(progress: TaskProgress) -> None:
    took = f" in {progress.seconds:.1f}s" if progress.seconds is not None else ""
    progress_console.print(f"[{progress.elapsed_s:7.1f}s] {progress.task}: {progress.state}{took}", highlight=False)


def _show_note(text: str) -> None:
    progress_console.print(f"note: {text}", highlight=False, markup=False)


def _params(name: str, items: tuple[str, ...]) -> dict[str, Any]:
    """NAME's arguments from ``--param`` items, checked (names, types, required ones, tolerations): exit 2 if bad."""
    from distml.pipelines import get_pipeline
    from distml.runs import check_arguments, parse_params

    with option_errors():
        pipeline = get_pipeline(name)
        arguments = parse_params(pipeline, items)
        check_arguments(pipeline, arguments)
    check_run_arguments(name, arguments)
    return arguments


def _host_callback(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """An --host that is no http(s) URL is a usage error; one that does not answer is found later (exit 1)."""
    from distml.runs.remote import check_api_url

    with option_errors():
        return check_api_url(value)


def check_run_arguments(name: str, arguments: dict[str, Any]) -> None:
    """distml.parameters' rules over ``arguments`` with the pipeline's defaults filled in.

    The same rules as the pipeline's own first step (check_parameters), but here, before a local
    run starts its first task or a submission reaches the cluster.
    """
    from distml.parameters import check_pipeline_parameters
    from distml.pipelines import get_pipeline

    with option_errors():
        specs = get_pipeline(name).component_spec.inputs or {}
        defaults = {key: spec.default for key, spec in specs.items() if spec.default is not None}
        check_pipeline_parameters(name, {**defaults, **arguments})


@click.command("compile")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for <pipeline>.yaml and components/<component>.yaml [pipelines/compiled, components/yaml].",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the committed YAML differs from a fresh compile.")
def compile_command(out_dir: Path | None, check: bool) -> None:
    """Compile every pipeline and component to YAML (set DISTML_IMAGE to use your own image)."""
    from distml.components import YAML_DIR, all_components, write_component_yaml
    from distml.pipelines import COMPILED_DIR, all_pipelines
    from distml.runs import compile_all, stale_files

    pipelines_dir = out_dir or COMPILED_DIR
    components_dir = out_dir / "components" if out_dir else YAML_DIR
    if check:
        problems = stale_files(all_pipelines(), pipelines_dir) + stale_files(all_components(), components_dir)
        if problems:
            raise DistmlError(
                f"compiled YAML is out of date: {'; '.join(problems)}",
                hint="Run `distml compile` and commit the result",
            )
        console.print(f"compiled YAML is current in {pipelines_dir} and {components_dir}")
        return
    for path in [*compile_all(pipelines_dir), *write_component_yaml(components_dir)]:
        console.print(f"wrote {path}", highlight=False)


@click.command("run")
@click.argument("name")
@click.option("--local", "local_runner", is_flag=True, help="Run on KFP's local subprocess runner (required).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help=_PARAM_HELP)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("distml-runs"),
    show_default=True,
    help="Each run gets a folder in here: task outputs, kfp-local.log, run.json.",
)
@click.option("--verbose", is_flag=True, help="Also stream every task's own output (always kept in kfp-local.log).")
def run_command(name: str, local_runner: bool, params: tuple[str, ...], out_dir: Path, verbose: bool) -> None:
    """Run pipeline NAME here, one subprocess per task, and list its outputs."""
    if not local_runner:
        raise click.UsageError("only --local is supported here; use `distml submit NAME --host URL` for a cluster")
    from distml.runs import run_pipeline_locally

    arguments = _params(name, params)
    run = run_pipeline_locally(
        name, arguments, out_dir=out_dir, on_progress=_show_progress, on_note=_show_note, echo_logs=verbose
    )
    table = Table(title=f"{name}: outputs")
    table.add_column("task")
    table.add_column("output")
    table.add_column("value or path", overflow="fold")
    for output, value in run.outputs.items():
        table.add_row("(pipeline)", output, str(value))
    for task, outputs in run.task_outputs.items():
        for output, value in outputs.items():
            table.add_row(task, output, str(value))
    console.print(table)
    console.print(f"{name} SUCCEEDED in {run.seconds:.1f}s; results in {run.run_dir} (run.json, kfp-local.log)")


@click.command("submit")
@click.argument("name")
@click.option("--host", required=True, envvar="KF_PIPELINES_ENDPOINT", callback=_host_callback, help=_HOST_HELP)
@click.option(
    "--experiment",
    default="Default",
    show_default=True,
    callback=non_empty_callback,
    help="Experiment to file the run under.",
)
@click.option("--namespace", default=None, help="Kubeflow profile namespace (multi-user Kubeflow).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help=_PARAM_HELP)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the run until it finishes.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=None,
    callback=finite_callback,
    help="Stop waiting after S seconds.",
)
@click.option(
    "--poll",
    "poll_s",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    callback=finite_callback,
    help="Seconds between checks.",
)
def submit_command(
    name: str,
    host: str,
    experiment: str,
    namespace: str | None,
    params: tuple[str, ...],
    wait: bool,
    timeout_s: float | None,
    poll_s: float,
) -> None:
    """Start pipeline NAME on a Kubeflow Pipelines cluster and follow it to the end."""
    from distml.runs import submit

    arguments = _params(name, params)
    submission = submit(
        name,
        host,
        experiment,
        arguments,
        namespace=namespace,
        wait=wait,
        timeout_s=timeout_s,
        poll_s=poll_s,
        on_progress=_show_progress,
    )
    console.print(f"run {submission.run_id}: {submission.state}; {submission.url}", highlight=False)


@click.command("upload")
@click.argument("name")
@click.option("--host", required=True, envvar="KF_PIPELINES_ENDPOINT", callback=_host_callback, help=_HOST_HELP)
@click.option(
    "--version",
    default=None,
    callback=non_empty_callback,
    help="Name of the new version when NAME exists [package version + time].",
)
@click.option("--namespace", default=None, help="Kubeflow profile namespace (multi-user Kubeflow).")
def upload_command(name: str, host: str, version: str | None, namespace: str | None) -> None:
    """Upload pipeline NAME to Kubeflow Pipelines: a new pipeline, or a new version of it."""
    from distml.pipelines import get_pipeline
    from distml.runs import upload

    with option_errors():
        get_pipeline(name)

    result = upload(name, host, version, namespace=namespace)
    if result.created:
        console.print(f"created pipeline {result.display_name} ({result.pipeline_id}): {result.url}", highlight=False)
    else:
        console.print(
            f"added version {result.version_name} ({result.version_id}) to {result.display_name}: {result.url}",
            highlight=False,
        )
