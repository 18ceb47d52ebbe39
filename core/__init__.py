"""panel2patch: zoom-in vision-language pretraining from scientific figures. Importing the package loads no plugin
and no heavy library; see :mod:`panel2patch.manager`."""

__version__ = "0.1.0"
