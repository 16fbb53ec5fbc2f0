"""Model selection (best by a named metric) and weight averaging of same-architecture models.

The names a notebook or script needs, importable from here (each module loads on first use).
"""

from distml.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "distml.selection.select": ("ModelSelection", "select_model", "copy_model_folder"),
        "distml.selection.report": ("markdown_table", "write_selection"),
        "distml.selection.average": ("average_models",),
    },
)
