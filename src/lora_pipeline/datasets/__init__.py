"""Dataset files: validate them offline, read their records, and map their formats to conversations.

``validate_file`` streams a JSONL or JSON-array file once, in constant memory, and returns a
:class:`DatasetReport` of findings (line, byte offset, JSON path, code, severity). ``iter_records`` reads the
same files the same way for training.

Example::

    from lora_pipeline.datasets import validate_file

    report = validate_file("train.jsonl", max_seq_len=2048)
    print(report.summary())
    report.raise_for_errors()
"""

from lora_pipeline.datasets._findings import CATALOGUE, Finding, FindingCode, Severity
from lora_pipeline.datasets._records import iter_records
from lora_pipeline.datasets._report import DatasetReport, DuplicatePair, TokenStats
from lora_pipeline.datasets._tokens import ChatTemplateTokenizer, EncodingTokenizer, Tokenizer
from lora_pipeline.datasets._validator import DEFAULT_MAX_LINE_BYTES, validate_file
from lora_pipeline.datasets.formats import DatasetFormat

__all__ = [
    "CATALOGUE",
    "DEFAULT_MAX_LINE_BYTES",
    "ChatTemplateTokenizer",
    "DatasetFormat",
    "DatasetReport",
    "DuplicatePair",
    "EncodingTokenizer",
    "Finding",
    "FindingCode",
    "Severity",
    "TokenStats",
    "Tokenizer",
    "iter_records",
    "validate_file",
]
