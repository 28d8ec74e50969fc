"""The HTML picture names the stack profile's log agent: Alloy's hops on the alloy proving ground (issue 12)."""

from __future__ import annotations

from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, start_stack
from tests.suite_runner import run_suites


def test_the_picture_draws_and_colours_alloy_where_the_profile_runs_it(tmp_path, prometheus_pair):
    with start_stack(tmp_path, prometheus_pair, profile="alloy", silent_agents=("workstation",)) as stack:
        result = run_suites(tmp_path, "--topology", str(stack.topology()), "-m", "logs", "-k", "canary",
                            "--timeout-scale", "0.05", env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})
    assert result.failure("logs::log canary reaches the primary loki[workstation]").startswith(
        "remote workstation Alloy → oke Loki: no canary line")
    page = (tmp_path / "index.html").read_text()
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "workstation Alloy" in svg and "oke Alloy" in svg and "Promtail" not in svg
    assert "remote workstation Alloy → oke Loki" in page
