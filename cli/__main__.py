"""`python -m cli` (installed as `mtmon`)."""

from cli import main

raise SystemExit(main())
