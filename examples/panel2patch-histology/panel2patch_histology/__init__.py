"""Example panel2patch plugin for histology figures."""
