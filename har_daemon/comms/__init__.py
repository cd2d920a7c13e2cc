"""comms"""
