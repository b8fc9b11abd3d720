"""Pure monitoring logic: metric catalogues, alert/recording rules, dashboards and their renderers.

Nothing in this package imports ``pulumi``; ``components.monitoring_stack`` turns these values into
resources, and ``components.monitoring.render`` writes them to files that promtool and Grafana read.
"""
