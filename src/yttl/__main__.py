from yttl.cli import main

raise SystemExit(main())
