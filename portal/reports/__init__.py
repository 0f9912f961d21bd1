"""Regulator reports (监管报表): monthly, key energy-consuming units, quarterly and annual.

* `periods`: report periods ("2026-10", "2026-Q3", "2026") in park-local time and when each is due;
* `config`: the [reports] and [smtp] settings, validated;
* `content`: what each report holds, computed through the portal's one data path (portal.scope.Scope, the
  access layer, the carbon pipeline), so a report's figures are the portal's;
* `render`: Excel, CSV (UTF-8 with BOM) and PDF files of a report;
* `archive`: the archive of versions (idempotent per kind and period, differences figure by figure) and run log;
* `delivery`: mail over SMTP with retries and a delivery log;
* `schedule`: the scheduled jobs (park.jobs provider); `cli`: `parkcarbon report ...`.

docs/reports.md describes the reports, the rules and the commands.
"""

KINDS = ("monthly", "key-units", "quarterly", "annual")
