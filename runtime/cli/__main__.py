"""``python -m mnemobot.runtime.cli``: the same as the ``mnemobot`` command."""

from mnemobot.runtime.cli.commands import main

main()
