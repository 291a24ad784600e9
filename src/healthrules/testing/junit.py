"""Write a test run as JUnit XML, the format CI systems (GitHub, GitLab, Jenkins) display.

One ``<testsuite>`` per test file and one ``<testcase>`` per case; a failed case carries a
``<failure>`` with the readable diff, a case that could not run an ``<error>`` with its
located problems, a skipped case ``<skipped>``.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from healthrules.testing.runner import CaseResult, RunReport

__all__ = ["to_junit_xml", "write_junit_xml"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
"""Characters XML 1.0 cannot hold, even escaped (a case name or a value may have them)."""


def _case(parent: ET.Element, case: CaseResult) -> None:
    el = ET.SubElement(parent, "testcase", {
        "classname": case.file.replace(os.sep, "/"),
        "name": case.name,
        "file": case.file,
        "line": str(case.line or 0),
        "time": f"{case.duration:.4f}",
    })
    if case.status == "failed":
        n = sum(len(f.mismatches) for f in case.failures)
        accounts = sorted({f.account for f in case.failures})
        sub = ET.SubElement(el, "failure", {
            "type": "mismatch",
            "message": f"{n} expectation(s) not met for account(s) {', '.join(accounts)}",
        })
        sub.text = case.render()
    elif case.status == "error":
        first = case.issues[0].message if case.issues else "the case could not run"
        sub = ET.SubElement(el, "error", {"type": "test_file_error", "message": first})
        sub.text = case.render()
    elif case.status == "skipped":
        ET.SubElement(el, "skipped", {"message": case.reason or ""})


def to_junit_xml(report: RunReport) -> str:
    """Render a run report as a JUnit XML document.

    Parameters
    ----------
    report
        The result of :func:`healthrules.testing.run`.

    Returns
    -------
    str
        The XML text, starting with the XML declaration.

    Examples
    --------
    >>> from healthrules.testing.runner import RunReport
    >>> print(to_junit_xml(RunReport()))  # doctest: +NORMALIZE_WHITESPACE
    <?xml version='1.0' encoding='utf-8'?>
    <testsuites name="healthrules" tests="0" failures="0" errors="0" skipped="0" time="0.0000" />
    """
    root = ET.Element("testsuites", {
        "name": "healthrules",
        "tests": str(len(report.cases)),
        "failures": str(report.count("failed")),
        "errors": str(report.count("error")),
        "skipped": str(report.count("skipped")),
        "time": f"{sum(c.duration for c in report.cases):.4f}",
    })
    for f in report.files:
        suite = ET.SubElement(root, "testsuite", {
            "name": f.path,
            "tests": str(len(f.cases)),
            "failures": str(sum(c.status == "failed" for c in f.cases)),
            "errors": str(sum(c.status == "error" for c in f.cases)),
            "skipped": str(sum(c.status == "skipped" for c in f.cases)),
            "time": f"{sum(c.duration for c in f.cases):.4f}",
        })
        if f.roadmap:
            props = ET.SubElement(suite, "properties")
            ET.SubElement(props, "property", {"name": "roadmap", "value": f.roadmap})
        for case in f.cases:
            _case(suite, case)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    # written as Python writes them ("\\x07"): a CI system would refuse the whole file
    body = _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", body)
    return "<?xml version='1.0' encoding='utf-8'?>\n" + body


def write_junit_xml(report: RunReport, path: str | os.PathLike[str]) -> None:
    """Write :func:`to_junit_xml` to a file (its folder is created if needed), atomically: a
    temporary file in the same folder, then a rename, so a CI step never reads half a file
    and a failed write leaves the previous report as it was."""
    from healthrules.output import atomic_write_text

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, to_junit_xml(report) + "\n")
