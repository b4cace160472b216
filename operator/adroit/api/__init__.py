"""The API of Adroit: resource models, settings and the CRDs generated from them.

Pure data: nothing in this package reads a clock, a file or the network.
"""
