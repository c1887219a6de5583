"""`python -m tasks.cli` (installed as `mtmon`)."""

from tasks.cli import main

raise SystemExit(main())
