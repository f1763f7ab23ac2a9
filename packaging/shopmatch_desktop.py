"""PyInstaller entry script: the frozen ``shopmatch-desktop`` executable starts here.

It is the console-script entry point ``desktop_app.app:main`` as a file, which is what
PyInstaller needs to analyse.
"""

import sys

from desktop_app.app import main

if __name__ == "__main__":
    sys.exit(main())
