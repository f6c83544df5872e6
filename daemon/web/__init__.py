"""daemon/web"""
