"""daemon/scoring"""
