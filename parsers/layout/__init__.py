"""The CPU figure parser ``cpu_layout``: panel boxes from gutters, panel labels, panel kinds."""
