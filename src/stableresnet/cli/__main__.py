"""``python -m stableresnet.cli``: the same as the ``stableresnet`` command."""

from . import main

main()
