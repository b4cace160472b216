"""What the world should be: pure functions of resources, settings and the time.

Nothing here reads a clock, a file or the network: time is a parameter.
"""
