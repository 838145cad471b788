"""What operators look at: Grafana dashboards and Prometheus alert rules, built from one place.

Dashboards are built with grafana-foundation-sdk; alert rules are plain data. ``infersight
dashboards`` writes both, with Grafana provisioning files and Kubernetes manifests, so that the
committed copies under ``dashboards/`` and ``deploy/`` are exactly what the code produces.
"""
