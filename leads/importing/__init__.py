"""CSV import building blocks, free of database writes.

- ``reading``: detect encoding/delimiter/header of an upload, stream its records;
- ``mapping``: column -> lead field choices, suggestions from header names, rules;
- ``values``: turn one record into an ingest row (placeholders, channels, numbers).

The service that runs an import is ``leads.services.imports``.
"""

from leads.importing.mapping import (
    CUSTOM_PREFIX,
    FULL_NAME,
    IGNORE,
    SOURCE,
    MappingError,
    custom_key,
    custom_keys,
    describe,
    suggest_mapping,
    target_choices,
    validate_mapping,
)
from leads.importing.reading import (
    DELIMITER_LABELS,
    MAX_IMPORT_BYTES,
    CsvInfo,
    ImportFileError,
    Record,
    check_size,
    format_size,
    inspect_csv,
    iter_records,
    readable,
)
from leads.importing.values import RowPlan, channel_for, custom_value

__all__ = [
    "CUSTOM_PREFIX",
    "DELIMITER_LABELS",
    "FULL_NAME",
    "IGNORE",
    "MAX_IMPORT_BYTES",
    "SOURCE",
    "CsvInfo",
    "ImportFileError",
    "MappingError",
    "Record",
    "RowPlan",
    "channel_for",
    "check_size",
    "custom_key",
    "custom_keys",
    "custom_value",
    "describe",
    "format_size",
    "inspect_csv",
    "iter_records",
    "readable",
    "suggest_mapping",
    "target_choices",
    "validate_mapping",
]
