"""The people's front door beside the operator's: `kubectl adroit` and its dashboard."""
