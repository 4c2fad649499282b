"""KPI selectors of the report pages: each takes a ReportQuery (period, filters,
role scope) and runs a fixed number of aggregate queries, whatever the data size."""
