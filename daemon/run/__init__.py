"""daemon/run"""
