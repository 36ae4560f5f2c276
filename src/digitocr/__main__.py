"""``python -m digitocr`` (and ``torchrun -m digitocr``) runs the CLI."""

from digitocr.cli import main

raise SystemExit(main())
