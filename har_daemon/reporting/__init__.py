"""The evaluation report and the plots behind it."""

REPORT_FILE = "report.html"
