"""The API's JSON parser: DRF's, with nesting bounded before the decoder recurses.

py_ecc (imported with web3) raises the interpreter's recursion limit to 100 000, so `json.load` of a body nested
deeper than the C stack holds (100 kB of `[`, well under the upload size limit) crashed the web process with a
segmentation fault instead of raising RecursionError. `wire.canonical.check_depth` refuses such a body first:
a 400 `parse_error` like any other body that is not JSON.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from wire.canonical import check_depth
from wire.errors import CanonicalFormError


class JSONParser(parsers.JSONParser):
    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        context = dict(parser_context or {})
        raw = stream.read()
        encoding = str(context.get("encoding", settings.DEFAULT_CHARSET))
        try:
            check_depth(raw.decode(encoding))
        except LookupError:  # not a text encoding DRF would accept either
            raise ParseError(f'Unsupported charset "{encoding}" in request Content-Type header.') from None
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - not text in the request's encoding (byte {exc.start})") from None
        except CanonicalFormError as exc:
            raise ParseError(f"JSON parse error - {exc.message}") from None
        return super().parse(io.BytesIO(raw), media_type, context)
