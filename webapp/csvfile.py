"""CSV written a line at a time (a large export never sits in memory), safe to open in a spreadsheet."""

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from litestar.response import Stream


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


BOM = "\ufeff"
"""First in the file: spreadsheets then read it as UTF-8, so Vietnamese names keep their letters."""


def csv_download(lines: AsyncIterator[str], filename: str, **headers: str) -> Stream:
    """A streamed CSV the browser saves as `filename`, never cached (it holds orders, maybe personal data)."""
    return Stream(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store", **headers},
    )


async def csv_stream(header: Sequence[str], rows: AsyncIterable[Sequence[str]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Sequence[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([spreadsheet_safe(value) for value in values])
        return buffer.getvalue()

    yield BOM + line(header)
    async for row in rows:
        yield line(row)
