__doc__ = "lab"
