import sys

from lightning.devnode.main import main

sys.exit(main())
