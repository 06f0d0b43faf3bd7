"""Moved to :mod:`MicroCTLikeLib.evaluate.report`; this name stays importable."""

from .evaluate.report import (  # noqa: F401
    METRIC_COLUMNS, TABLE_HEADER, comparison_figure, dumps, html_table, markdown_table, metrics_table_rows,
    write_json, write_markdown_and_html,
)
