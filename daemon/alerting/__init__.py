"""daemon/alerting"""
